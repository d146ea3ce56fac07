/*
 * itch.c - decode and encode Nasdaq TotalView-ITCH 5.0 messages.
 *
 * Owns the table of type lengths and the field layout of every type. The
 * decoder is on the replay hot path (the target is well over ten million
 * messages a second including books and objects), so it is one length check
 * against the table, the common header, and a switch on the type byte whose
 * cases are straight-line loads at constant offsets: no allocation, no
 * loops, no copies beyond the struct. Offsets below are those of the
 * specification, counted from the type byte.
 *
 * Invariants: itch_decode() reads only buf[0..len) and only after
 * itch_check() has proven len is the type's exact length; itch_encode()
 * writes only buf[0..itch_msg_len(type)) and only after checking cap. The
 * two are inverses: decode(encode(m)) == m for every field the type has.
 */
#include "feed/itch.h"

#include <string.h>

#include "feed/be.h"

const uint8_t itch_lens[256] = {
    [ITCH_SYSTEM_EVENT] = 12,
    [ITCH_STOCK_DIRECTORY] = 39,
    [ITCH_TRADING_ACTION] = 25,
    [ITCH_REG_SHO] = 20,
    [ITCH_PARTICIPANT_POSITION] = 26,
    [ITCH_MWCB_DECLINE] = 35,
    [ITCH_MWCB_STATUS] = 12,
    [ITCH_IPO_QUOTING] = 28,
    [ITCH_LULD_COLLAR] = 35,
    [ITCH_OPERATIONAL_HALT] = 21,
    [ITCH_ADD_ORDER] = 36,
    [ITCH_ADD_ORDER_MPID] = 40,
    [ITCH_ORDER_EXECUTED] = 31,
    [ITCH_ORDER_EXECUTED_PRICE] = 36,
    [ITCH_ORDER_CANCEL] = 23,
    [ITCH_ORDER_DELETE] = 19,
    [ITCH_ORDER_REPLACE] = 35,
    [ITCH_TRADE] = 44,
    [ITCH_CROSS_TRADE] = 40,
    [ITCH_BROKEN_TRADE] = 19,
    [ITCH_NOII] = 50,
    [ITCH_RPII] = 20,
    [ITCH_DLCR] = 48,
};

/* The Stock field sits at offset 11 in most stock-related types. */
#define STOCK_AT(buf, off) memcpy(m->stock, (buf) + (off), ITCH_STOCK_LEN)

int itch_decode(const uint8_t *buf, size_t len, itch_msg_t *msg)
{
    int rc = itch_check(buf, len);
    if (__builtin_expect(rc != 0, 0))
        return rc;

    msg->type = buf[0];
    msg->stock_locate = be16_get(buf + 1);
    msg->tracking = be16_get(buf + 3);
    msg->timestamp = be48_get(buf + 5);

    switch (buf[0]) {
    case ITCH_ADD_ORDER:
    case ITCH_ADD_ORDER_MPID: {
        itch_add_order_t *m = &msg->add;
        m->order_ref = be64_get(buf + 11);
        m->side = (char)buf[19];
        m->shares = be32_get(buf + 20);
        STOCK_AT(buf, 24);
        m->price = be32_get(buf + 32);
        if (buf[0] == ITCH_ADD_ORDER_MPID)
            memcpy(m->attribution, buf + 36, ITCH_MPID_LEN);
        else
            memset(m->attribution, ' ', ITCH_MPID_LEN);
        break;
    }
    case ITCH_ORDER_DELETE:
        msg->del.order_ref = be64_get(buf + 11);
        break;
    case ITCH_ORDER_REPLACE: {
        itch_order_replace_t *m = &msg->replace;
        m->orig_ref = be64_get(buf + 11);
        m->new_ref = be64_get(buf + 19);
        m->shares = be32_get(buf + 27);
        m->price = be32_get(buf + 31);
        break;
    }
    case ITCH_ORDER_EXECUTED: {
        itch_order_executed_t *m = &msg->executed;
        m->order_ref = be64_get(buf + 11);
        m->shares = be32_get(buf + 19);
        m->match = be64_get(buf + 23);
        break;
    }
    case ITCH_ORDER_CANCEL: {
        itch_order_cancel_t *m = &msg->cancel;
        m->order_ref = be64_get(buf + 11);
        m->shares = be32_get(buf + 19);
        break;
    }
    case ITCH_ORDER_EXECUTED_PRICE: {
        itch_order_executed_price_t *m = &msg->executed_price;
        m->order_ref = be64_get(buf + 11);
        m->shares = be32_get(buf + 19);
        m->match = be64_get(buf + 23);
        m->printable = (char)buf[31];
        m->price = be32_get(buf + 32);
        break;
    }
    case ITCH_TRADE: {
        itch_trade_t *m = &msg->trade;
        m->order_ref = be64_get(buf + 11);
        m->side = (char)buf[19];
        m->shares = be32_get(buf + 20);
        STOCK_AT(buf, 24);
        m->price = be32_get(buf + 32);
        m->match = be64_get(buf + 36);
        break;
    }
    case ITCH_CROSS_TRADE: {
        itch_cross_trade_t *m = &msg->cross_trade;
        m->shares = be64_get(buf + 11);
        STOCK_AT(buf, 19);
        m->price = be32_get(buf + 27);
        m->match = be64_get(buf + 31);
        m->cross_type = (char)buf[39];
        break;
    }
    case ITCH_BROKEN_TRADE:
        msg->broken_trade.match = be64_get(buf + 11);
        break;
    case ITCH_NOII: {
        itch_noii_t *m = &msg->noii;
        m->paired_shares = be64_get(buf + 11);
        m->imbalance_shares = be64_get(buf + 19);
        m->imbalance_direction = (char)buf[27];
        STOCK_AT(buf, 28);
        m->far_price = be32_get(buf + 36);
        m->near_price = be32_get(buf + 40);
        m->reference_price = be32_get(buf + 44);
        m->cross_type = (char)buf[48];
        m->price_variation = (char)buf[49];
        break;
    }
    case ITCH_SYSTEM_EVENT:
        msg->system_event.event_code = (char)buf[11];
        break;
    case ITCH_STOCK_DIRECTORY: {
        itch_stock_directory_t *m = &msg->stock_directory;
        STOCK_AT(buf, 11);
        m->market_category = (char)buf[19];
        m->financial_status = (char)buf[20];
        m->round_lot_size = be32_get(buf + 21);
        m->round_lots_only = (char)buf[25];
        m->issue_classification = (char)buf[26];
        memcpy(m->issue_subtype, buf + 27, 2);
        m->authenticity = (char)buf[29];
        m->short_sale_threshold = (char)buf[30];
        m->ipo_flag = (char)buf[31];
        m->luld_tier = (char)buf[32];
        m->etp_flag = (char)buf[33];
        m->etp_leverage = be32_get(buf + 34);
        m->inverse = (char)buf[38];
        break;
    }
    case ITCH_TRADING_ACTION: {
        itch_trading_action_t *m = &msg->trading_action;
        STOCK_AT(buf, 11);
        m->trading_state = (char)buf[19];
        m->reserved = (char)buf[20];
        memcpy(m->reason, buf + 21, 4);
        break;
    }
    case ITCH_REG_SHO: {
        itch_reg_sho_t *m = &msg->reg_sho;
        STOCK_AT(buf, 11);
        m->action = (char)buf[19];
        break;
    }
    case ITCH_PARTICIPANT_POSITION: {
        itch_participant_position_t *m = &msg->participant;
        memcpy(m->mpid, buf + 11, ITCH_MPID_LEN);
        STOCK_AT(buf, 15);
        m->primary_market_maker = (char)buf[23];
        m->market_maker_mode = (char)buf[24];
        m->participant_state = (char)buf[25];
        break;
    }
    case ITCH_MWCB_DECLINE: {
        itch_mwcb_decline_t *m = &msg->mwcb_decline;
        m->level1 = be64_get(buf + 11);
        m->level2 = be64_get(buf + 19);
        m->level3 = be64_get(buf + 27);
        break;
    }
    case ITCH_MWCB_STATUS:
        msg->mwcb_status.breached_level = (char)buf[11];
        break;
    case ITCH_IPO_QUOTING: {
        itch_ipo_quoting_t *m = &msg->ipo_quoting;
        STOCK_AT(buf, 11);
        m->release_time = be32_get(buf + 19);
        m->release_qualifier = (char)buf[23];
        m->ipo_price = be32_get(buf + 24);
        break;
    }
    case ITCH_LULD_COLLAR: {
        itch_luld_collar_t *m = &msg->luld_collar;
        STOCK_AT(buf, 11);
        m->reference_price = be32_get(buf + 19);
        m->upper_price = be32_get(buf + 23);
        m->lower_price = be32_get(buf + 27);
        m->extension = be32_get(buf + 31);
        break;
    }
    case ITCH_OPERATIONAL_HALT: {
        itch_operational_halt_t *m = &msg->operational_halt;
        STOCK_AT(buf, 11);
        m->market_code = (char)buf[19];
        m->action = (char)buf[20];
        break;
    }
    case ITCH_RPII: {
        itch_rpii_t *m = &msg->rpii;
        STOCK_AT(buf, 11);
        m->interest_flag = (char)buf[19];
        break;
    }
    case ITCH_DLCR: {
        itch_dlcr_t *m = &msg->dlcr;
        STOCK_AT(buf, 11);
        m->open_eligible = (char)buf[19];
        m->min_price = be32_get(buf + 20);
        m->max_price = be32_get(buf + 24);
        m->near_price = be32_get(buf + 28);
        m->near_time = be64_get(buf + 32);
        m->lower_collar = be32_get(buf + 40);
        m->upper_collar = be32_get(buf + 44);
        break;
    }
    }
    return 0;
}

#undef STOCK_AT
#define STOCK_TO(buf, off) memcpy((buf) + (off), m->stock, ITCH_STOCK_LEN)

int itch_encode(const itch_msg_t *msg, uint8_t *buf, size_t cap)
{
    size_t len = itch_msg_len(msg->type);
    if (len == 0)
        return ITCH_EUNKNOWN;
    if (msg->timestamp >= ITCH_TS_MAX)
        return ITCH_ERANGE;
    if (cap < len)
        return ITCH_ENOBUFS;

    buf[0] = msg->type;
    be16_put(buf + 1, msg->stock_locate);
    be16_put(buf + 3, msg->tracking);
    be48_put(buf + 5, msg->timestamp);

    switch (msg->type) {
    case ITCH_ADD_ORDER:
    case ITCH_ADD_ORDER_MPID: {
        const itch_add_order_t *m = &msg->add;
        be64_put(buf + 11, m->order_ref);
        buf[19] = (uint8_t)m->side;
        be32_put(buf + 20, m->shares);
        STOCK_TO(buf, 24);
        be32_put(buf + 32, m->price);
        if (msg->type == ITCH_ADD_ORDER_MPID)
            memcpy(buf + 36, m->attribution, ITCH_MPID_LEN);
        break;
    }
    case ITCH_ORDER_DELETE:
        be64_put(buf + 11, msg->del.order_ref);
        break;
    case ITCH_ORDER_REPLACE: {
        const itch_order_replace_t *m = &msg->replace;
        be64_put(buf + 11, m->orig_ref);
        be64_put(buf + 19, m->new_ref);
        be32_put(buf + 27, m->shares);
        be32_put(buf + 31, m->price);
        break;
    }
    case ITCH_ORDER_EXECUTED: {
        const itch_order_executed_t *m = &msg->executed;
        be64_put(buf + 11, m->order_ref);
        be32_put(buf + 19, m->shares);
        be64_put(buf + 23, m->match);
        break;
    }
    case ITCH_ORDER_CANCEL: {
        const itch_order_cancel_t *m = &msg->cancel;
        be64_put(buf + 11, m->order_ref);
        be32_put(buf + 19, m->shares);
        break;
    }
    case ITCH_ORDER_EXECUTED_PRICE: {
        const itch_order_executed_price_t *m = &msg->executed_price;
        be64_put(buf + 11, m->order_ref);
        be32_put(buf + 19, m->shares);
        be64_put(buf + 23, m->match);
        buf[31] = (uint8_t)m->printable;
        be32_put(buf + 32, m->price);
        break;
    }
    case ITCH_TRADE: {
        const itch_trade_t *m = &msg->trade;
        be64_put(buf + 11, m->order_ref);
        buf[19] = (uint8_t)m->side;
        be32_put(buf + 20, m->shares);
        STOCK_TO(buf, 24);
        be32_put(buf + 32, m->price);
        be64_put(buf + 36, m->match);
        break;
    }
    case ITCH_CROSS_TRADE: {
        const itch_cross_trade_t *m = &msg->cross_trade;
        be64_put(buf + 11, m->shares);
        STOCK_TO(buf, 19);
        be32_put(buf + 27, m->price);
        be64_put(buf + 31, m->match);
        buf[39] = (uint8_t)m->cross_type;
        break;
    }
    case ITCH_BROKEN_TRADE:
        be64_put(buf + 11, msg->broken_trade.match);
        break;
    case ITCH_NOII: {
        const itch_noii_t *m = &msg->noii;
        be64_put(buf + 11, m->paired_shares);
        be64_put(buf + 19, m->imbalance_shares);
        buf[27] = (uint8_t)m->imbalance_direction;
        STOCK_TO(buf, 28);
        be32_put(buf + 36, m->far_price);
        be32_put(buf + 40, m->near_price);
        be32_put(buf + 44, m->reference_price);
        buf[48] = (uint8_t)m->cross_type;
        buf[49] = (uint8_t)m->price_variation;
        break;
    }
    case ITCH_SYSTEM_EVENT:
        buf[11] = (uint8_t)msg->system_event.event_code;
        break;
    case ITCH_STOCK_DIRECTORY: {
        const itch_stock_directory_t *m = &msg->stock_directory;
        STOCK_TO(buf, 11);
        buf[19] = (uint8_t)m->market_category;
        buf[20] = (uint8_t)m->financial_status;
        be32_put(buf + 21, m->round_lot_size);
        buf[25] = (uint8_t)m->round_lots_only;
        buf[26] = (uint8_t)m->issue_classification;
        memcpy(buf + 27, m->issue_subtype, 2);
        buf[29] = (uint8_t)m->authenticity;
        buf[30] = (uint8_t)m->short_sale_threshold;
        buf[31] = (uint8_t)m->ipo_flag;
        buf[32] = (uint8_t)m->luld_tier;
        buf[33] = (uint8_t)m->etp_flag;
        be32_put(buf + 34, m->etp_leverage);
        buf[38] = (uint8_t)m->inverse;
        break;
    }
    case ITCH_TRADING_ACTION: {
        const itch_trading_action_t *m = &msg->trading_action;
        STOCK_TO(buf, 11);
        buf[19] = (uint8_t)m->trading_state;
        buf[20] = (uint8_t)m->reserved;
        memcpy(buf + 21, m->reason, 4);
        break;
    }
    case ITCH_REG_SHO: {
        const itch_reg_sho_t *m = &msg->reg_sho;
        STOCK_TO(buf, 11);
        buf[19] = (uint8_t)m->action;
        break;
    }
    case ITCH_PARTICIPANT_POSITION: {
        const itch_participant_position_t *m = &msg->participant;
        memcpy(buf + 11, m->mpid, ITCH_MPID_LEN);
        STOCK_TO(buf, 15);
        buf[23] = (uint8_t)m->primary_market_maker;
        buf[24] = (uint8_t)m->market_maker_mode;
        buf[25] = (uint8_t)m->participant_state;
        break;
    }
    case ITCH_MWCB_DECLINE: {
        const itch_mwcb_decline_t *m = &msg->mwcb_decline;
        be64_put(buf + 11, m->level1);
        be64_put(buf + 19, m->level2);
        be64_put(buf + 27, m->level3);
        break;
    }
    case ITCH_MWCB_STATUS:
        buf[11] = (uint8_t)msg->mwcb_status.breached_level;
        break;
    case ITCH_IPO_QUOTING: {
        const itch_ipo_quoting_t *m = &msg->ipo_quoting;
        STOCK_TO(buf, 11);
        be32_put(buf + 19, m->release_time);
        buf[23] = (uint8_t)m->release_qualifier;
        be32_put(buf + 24, m->ipo_price);
        break;
    }
    case ITCH_LULD_COLLAR: {
        const itch_luld_collar_t *m = &msg->luld_collar;
        STOCK_TO(buf, 11);
        be32_put(buf + 19, m->reference_price);
        be32_put(buf + 23, m->upper_price);
        be32_put(buf + 27, m->lower_price);
        be32_put(buf + 31, m->extension);
        break;
    }
    case ITCH_OPERATIONAL_HALT: {
        const itch_operational_halt_t *m = &msg->operational_halt;
        STOCK_TO(buf, 11);
        buf[19] = (uint8_t)m->market_code;
        buf[20] = (uint8_t)m->action;
        break;
    }
    case ITCH_RPII: {
        const itch_rpii_t *m = &msg->rpii;
        STOCK_TO(buf, 11);
        buf[19] = (uint8_t)m->interest_flag;
        break;
    }
    case ITCH_DLCR: {
        const itch_dlcr_t *m = &msg->dlcr;
        STOCK_TO(buf, 11);
        buf[19] = (uint8_t)m->open_eligible;
        be32_put(buf + 20, m->min_price);
        be32_put(buf + 24, m->max_price);
        be32_put(buf + 28, m->near_price);
        be64_put(buf + 32, m->near_time);
        be32_put(buf + 40, m->lower_collar);
        be32_put(buf + 44, m->upper_collar);
        break;
    }
    }
    return (int)len;
}

#undef STOCK_TO

void itch_stock_set(char stock[ITCH_STOCK_LEN], const char *s, size_t len)
{
    if (len > ITCH_STOCK_LEN)
        len = ITCH_STOCK_LEN;
    memcpy(stock, s, len);
    memset(stock + len, ' ', ITCH_STOCK_LEN - len);
}

size_t itch_stock_len(const char stock[ITCH_STOCK_LEN])
{
    size_t len = ITCH_STOCK_LEN;
    while (len > 0 && stock[len - 1] == ' ')
        len--;
    return len;
}

const char *itch_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ITCH_ETRUNCATED:
        return "truncated: shorter than its type's length";
    case ITCH_EUNKNOWN:
        return "unknown message type";
    case ITCH_EOVERSIZE:
        return "oversize: longer than its type's length";
    case ITCH_ENOBUFS:
        return "buffer too small for the message";
    case ITCH_ERANGE:
        return "timestamp does not fit in 48 bits";
    default:
        return "unexpected error";
    }
}
