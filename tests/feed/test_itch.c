/*
 * test_itch.c - tests of feed/itch.c: the ITCH 5.0 decoder and encoder.
 *
 * Every type is built byte by byte from the field table of the specification
 * (offsets in the comments), with distinct values in every field so that a
 * field read at the wrong offset or width shows. Each is decoded flush
 * against a guard page (a read past the message faults), checked field by
 * field, and encoded back to the same bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "feed/itch.h"
#include "tests/feed/wire.h"

#define LOCATE   0x1234
#define TRACKING 0xBEEF
#define TS       0x0A0B0C0D0E0FULL /* 48 bits: 11045.9 s after midnight */

/* The common header: Message Type (0, 1), Stock Locate (1, 2), Tracking
 * Number (3, 2), Timestamp (5, 6). */
static void header(struct wire *w, char type)
{
    w->n = 0;
    wire_char(w, type);
    wire_uint(w, LOCATE, 2);
    wire_uint(w, TRACKING, 2);
    wire_uint(w, TS, 6);
}

/* Check the built message has the spec's length, decode it flush against a
 * guard page, check the header, and check it encodes back to the same bytes. */
static itch_msg_t decode_spec(const struct wire *w, size_t spec_len)
{
    assert_int_equal(w->n, spec_len);
    assert_int_equal(itch_msg_len(w->b[0]), spec_len);

    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    const uint8_t *p = guard_place(&g, w->b, w->n);
    itch_msg_t m;
    memset(&m, 0xA5, sizeof m);
    assert_int_equal(itch_decode(p, w->n, &m), 0);
    guard_close(&g);

    assert_int_equal(m.type, w->b[0]);
    assert_int_equal(m.stock_locate, LOCATE);
    assert_int_equal(m.tracking, TRACKING);
    assert_int_equal(m.timestamp, TS);

    uint8_t out[ITCH_MAX_LEN];
    assert_int_equal(itch_encode(&m, out, sizeof out), (int)spec_len);
    assert_memory_equal(out, w->b, spec_len);
    return m;
}

static void assert_stock(const char *field, const char *sym)
{
    char want[ITCH_STOCK_LEN];
    itch_stock_set(want, sym, strlen(sym));
    assert_memory_equal(field, want, ITCH_STOCK_LEN);
}

static void test_system_event_S_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'S');
    wire_char(&w, 'Q'); /* 11 Event Code */
    itch_msg_t m = decode_spec(&w, 12);
    assert_int_equal(m.system_event.event_code, 'Q');
}

static void test_stock_directory_R_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'R');
    wire_alpha(&w, "BRK.A", 8);   /* 11 Stock */
    wire_char(&w, 'N');           /* 19 Market Category */
    wire_char(&w, 'D');           /* 20 Financial Status Indicator */
    wire_uint(&w, 0x01020304, 4); /* 21 Round Lot Size */
    wire_char(&w, 'Y');           /* 25 Round Lots Only */
    wire_char(&w, 'C');           /* 26 Issue Classification */
    wire_alpha(&w, "Z", 2);       /* 27 Issue Sub-Type */
    wire_char(&w, 'P');           /* 29 Authenticity */
    wire_char(&w, 'N');           /* 30 Short Sale Threshold Indicator */
    wire_char(&w, ' ');           /* 31 IPO Flag */
    wire_char(&w, '2');           /* 32 LULD Reference Price Tier */
    wire_char(&w, 'Y');           /* 33 ETP Flag */
    wire_uint(&w, 0x0A0B0C0D, 4); /* 34 ETP Leverage Factor */
    wire_char(&w, 'Y');           /* 38 Inverse Indicator */
    itch_msg_t m = decode_spec(&w, 39);
    const itch_stock_directory_t *d = &m.stock_directory;
    assert_stock(d->stock, "BRK.A");
    assert_int_equal(d->market_category, 'N');
    assert_int_equal(d->financial_status, 'D');
    assert_int_equal(d->round_lot_size, 0x01020304);
    assert_int_equal(d->round_lots_only, 'Y');
    assert_int_equal(d->issue_classification, 'C');
    assert_memory_equal(d->issue_subtype, "Z ", 2);
    assert_int_equal(d->authenticity, 'P');
    assert_int_equal(d->short_sale_threshold, 'N');
    assert_int_equal(d->ipo_flag, ' ');
    assert_int_equal(d->luld_tier, '2');
    assert_int_equal(d->etp_flag, 'Y');
    assert_int_equal(d->etp_leverage, 0x0A0B0C0D);
    assert_int_equal(d->inverse, 'Y');
}

static void test_trading_action_H_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'H');
    wire_alpha(&w, "ZVZZT", 8); /* 11 Stock */
    wire_char(&w, 'H');         /* 19 Trading State */
    wire_char(&w, ' ');         /* 20 Reserved */
    wire_alpha(&w, "LUDP", 4);  /* 21 Reason */
    itch_msg_t m = decode_spec(&w, 25);
    assert_stock(m.trading_action.stock, "ZVZZT");
    assert_int_equal(m.trading_action.trading_state, 'H');
    assert_int_equal(m.trading_action.reserved, ' ');
    assert_memory_equal(m.trading_action.reason, "LUDP", 4);
}

static void test_reg_sho_Y_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'Y');
    wire_alpha(&w, "MSFT", 8); /* 11 Stock */
    wire_char(&w, '1');        /* 19 Reg SHO Action */
    itch_msg_t m = decode_spec(&w, 20);
    assert_stock(m.reg_sho.stock, "MSFT");
    assert_int_equal(m.reg_sho.action, '1');
}

static void test_participant_position_L_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'L');
    wire_alpha(&w, "GSCO", 4); /* 11 MPID */
    wire_alpha(&w, "IBM", 8);  /* 15 Stock */
    wire_char(&w, 'Y');        /* 23 Primary Market Maker */
    wire_char(&w, 'P');        /* 24 Market Maker Mode */
    wire_char(&w, 'A');        /* 25 Market Participant State */
    itch_msg_t m = decode_spec(&w, 26);
    assert_memory_equal(m.participant.mpid, "GSCO", 4);
    assert_stock(m.participant.stock, "IBM");
    assert_int_equal(m.participant.primary_market_maker, 'Y');
    assert_int_equal(m.participant.market_maker_mode, 'P');
    assert_int_equal(m.participant.participant_state, 'A');
}

static void test_mwcb_decline_V_decodes_price8_levels_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'V');
    wire_uint(&w, 385012345678ULL, 8);       /* 11 Level 1, Price(8): 3850.12345678 */
    wire_uint(&w, 0x1112131415161718ULL, 8); /* 19 Level 2 */
    wire_uint(&w, 0x2122232425262728ULL, 8); /* 27 Level 3 */
    itch_msg_t m = decode_spec(&w, 35);
    assert_int_equal(m.mwcb_decline.level1, 385012345678ULL);
    assert_int_equal(m.mwcb_decline.level2, 0x1112131415161718ULL);
    assert_int_equal(m.mwcb_decline.level3, 0x2122232425262728ULL);
}

static void test_mwcb_status_W_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'W');
    wire_char(&w, '2'); /* 11 Breached Level */
    itch_msg_t m = decode_spec(&w, 12);
    assert_int_equal(m.mwcb_status.breached_level, '2');
}

static void test_ipo_quoting_K_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'K');
    wire_alpha(&w, "NEWCO", 8);   /* 11 Stock */
    wire_uint(&w, 34200, 4);      /* 19 IPO Quotation Release Time: 09:30:00 */
    wire_char(&w, 'A');           /* 23 IPO Quotation Release Qualifier */
    wire_uint(&w, 0x00BC614E, 4); /* 24 IPO Price: 1234.5678 */
    itch_msg_t m = decode_spec(&w, 28);
    assert_stock(m.ipo_quoting.stock, "NEWCO");
    assert_int_equal(m.ipo_quoting.release_time, 34200);
    assert_int_equal(m.ipo_quoting.release_qualifier, 'A');
    assert_int_equal(m.ipo_quoting.ipo_price, 12345678);
}

static void test_luld_collar_J_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'J');
    wire_alpha(&w, "TSLA", 8);    /* 11 Stock */
    wire_uint(&w, 0x01010101, 4); /* 19 Auction Collar Reference Price */
    wire_uint(&w, 0x02020202, 4); /* 23 Upper Auction Collar Price */
    wire_uint(&w, 0x03030303, 4); /* 27 Lower Auction Collar Price */
    wire_uint(&w, 0x04040404, 4); /* 31 Auction Collar Extension */
    itch_msg_t m = decode_spec(&w, 35);
    assert_stock(m.luld_collar.stock, "TSLA");
    assert_int_equal(m.luld_collar.reference_price, 0x01010101);
    assert_int_equal(m.luld_collar.upper_price, 0x02020202);
    assert_int_equal(m.luld_collar.lower_price, 0x03030303);
    assert_int_equal(m.luld_collar.extension, 0x04040404);
}

static void test_operational_halt_h_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'h');
    wire_alpha(&w, "QQQ", 8); /* 11 Stock */
    wire_char(&w, 'X');       /* 19 Market Code */
    wire_char(&w, 'H');       /* 20 Operational Halt Action */
    itch_msg_t m = decode_spec(&w, 21);
    assert_stock(m.operational_halt.stock, "QQQ");
    assert_int_equal(m.operational_halt.market_code, 'X');
    assert_int_equal(m.operational_halt.action, 'H');
}

static void test_add_order_A_decodes_from_spec_bytes_with_blank_attribution(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'A');
    wire_uint(&w, 0x0102030405060708ULL, 8); /* 11 Order Reference Number */
    wire_char(&w, 'B');                      /* 19 Buy/Sell Indicator */
    wire_uint(&w, 0x000186A0, 4);            /* 20 Shares: 100000 */
    wire_alpha(&w, "AAPL", 8);               /* 24 Stock */
    wire_uint(&w, 1012500, 4);               /* 32 Price: 101.2500 */
    itch_msg_t m = decode_spec(&w, 36);
    assert_int_equal(m.add.order_ref, 0x0102030405060708ULL);
    assert_int_equal(m.add.side, 'B');
    assert_int_equal(m.add.shares, 100000);
    assert_stock(m.add.stock, "AAPL");
    assert_int_equal(m.add.price, 1012500);
    assert_memory_equal(m.add.attribution, "    ", 4);
}

static void test_add_order_mpid_F_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'F');
    wire_uint(&w, 0xF1F2F3F4F5F6F7F8ULL, 8); /* 11 Order Reference Number */
    wire_char(&w, 'S');                      /* 19 Buy/Sell Indicator */
    wire_uint(&w, 0xFFFFFFFF, 4);            /* 20 Shares */
    wire_alpha(&w, "GOOGL", 8);              /* 24 Stock */
    wire_uint(&w, 0xFFFFFFFE, 4);            /* 32 Price */
    wire_alpha(&w, "VIRT", 4);               /* 36 Attribution */
    itch_msg_t m = decode_spec(&w, 40);
    assert_int_equal(m.add.order_ref, 0xF1F2F3F4F5F6F7F8ULL);
    assert_int_equal(m.add.side, 'S');
    assert_int_equal(m.add.shares, 0xFFFFFFFFu);
    assert_stock(m.add.stock, "GOOGL");
    assert_int_equal(m.add.price, 0xFFFFFFFEu);
    assert_memory_equal(m.add.attribution, "VIRT", 4);
}

static void test_order_executed_E_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'E');
    wire_uint(&w, 0x1111111122222222ULL, 8); /* 11 Order Reference Number */
    wire_uint(&w, 0x33334444, 4);            /* 19 Executed Shares */
    wire_uint(&w, 0x5555666677778888ULL, 8); /* 23 Match Number */
    itch_msg_t m = decode_spec(&w, 31);
    assert_int_equal(m.executed.order_ref, 0x1111111122222222ULL);
    assert_int_equal(m.executed.shares, 0x33334444);
    assert_int_equal(m.executed.match, 0x5555666677778888ULL);
}

static void test_order_executed_price_C_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'C');
    wire_uint(&w, 0x0101010102020202ULL, 8); /* 11 Order Reference Number */
    wire_uint(&w, 0x03030404, 4);            /* 19 Executed Shares */
    wire_uint(&w, 0x0505060607070808ULL, 8); /* 23 Match Number */
    wire_char(&w, 'N');                      /* 31 Printable */
    wire_uint(&w, 0x09090A0A, 4);            /* 32 Execution Price */
    itch_msg_t m = decode_spec(&w, 36);
    assert_int_equal(m.executed_price.order_ref, 0x0101010102020202ULL);
    assert_int_equal(m.executed_price.shares, 0x03030404);
    assert_int_equal(m.executed_price.match, 0x0505060607070808ULL);
    assert_int_equal(m.executed_price.printable, 'N');
    assert_int_equal(m.executed_price.price, 0x09090A0A);
}

static void test_order_cancel_X_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'X');
    wire_uint(&w, 0xA1A2A3A4A5A6A7A8ULL, 8); /* 11 Order Reference Number */
    wire_uint(&w, 0xB1B2B3B4, 4);            /* 19 Cancelled Shares */
    itch_msg_t m = decode_spec(&w, 23);
    assert_int_equal(m.cancel.order_ref, 0xA1A2A3A4A5A6A7A8ULL);
    assert_int_equal(m.cancel.shares, 0xB1B2B3B4u);
}

static void test_order_delete_D_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'D');
    wire_uint(&w, 0xC1C2C3C4C5C6C7C8ULL, 8); /* 11 Order Reference Number */
    itch_msg_t m = decode_spec(&w, 19);
    assert_int_equal(m.del.order_ref, 0xC1C2C3C4C5C6C7C8ULL);
}

static void test_order_replace_U_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'U');
    wire_uint(&w, 0x0000000000000001ULL, 8); /* 11 Original Order Reference Number */
    wire_uint(&w, 0x0203040506070809ULL, 8); /* 19 New Order Reference Number */
    wire_uint(&w, 0x0A0B0C0D, 4);            /* 27 Shares */
    wire_uint(&w, 0x0E0F1011, 4);            /* 31 Price */
    itch_msg_t m = decode_spec(&w, 35);
    assert_int_equal(m.replace.orig_ref, 1);
    assert_int_equal(m.replace.new_ref, 0x0203040506070809ULL);
    assert_int_equal(m.replace.shares, 0x0A0B0C0D);
    assert_int_equal(m.replace.price, 0x0E0F1011);
}

static void test_trade_P_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'P');
    wire_uint(&w, 0, 8);                     /* 11 Order Reference Number */
    wire_char(&w, 'S');                      /* 19 Buy/Sell Indicator */
    wire_uint(&w, 0x00001388, 4);            /* 20 Shares: 5000 */
    wire_alpha(&w, "SPY", 8);                /* 24 Stock */
    wire_uint(&w, 4501234, 4);               /* 32 Price: 450.1234 */
    wire_uint(&w, 0x0102030405060708ULL, 8); /* 36 Match Number */
    itch_msg_t m = decode_spec(&w, 44);
    assert_int_equal(m.trade.order_ref, 0);
    assert_int_equal(m.trade.side, 'S');
    assert_int_equal(m.trade.shares, 5000);
    assert_stock(m.trade.stock, "SPY");
    assert_int_equal(m.trade.price, 4501234);
    assert_int_equal(m.trade.match, 0x0102030405060708ULL);
}

static void test_cross_trade_Q_decodes_8_byte_shares_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'Q');
    wire_uint(&w, 0x0000000123456789ULL, 8); /* 11 Shares (8 bytes) */
    wire_alpha(&w, "NVDA", 8);               /* 19 Stock */
    wire_uint(&w, 0x11223344, 4);            /* 27 Cross Price */
    wire_uint(&w, 0x5566778899AABBCCULL, 8); /* 31 Match Number */
    wire_char(&w, 'C');                      /* 39 Cross Type */
    itch_msg_t m = decode_spec(&w, 40);
    assert_int_equal(m.cross_trade.shares, 0x0000000123456789ULL);
    assert_stock(m.cross_trade.stock, "NVDA");
    assert_int_equal(m.cross_trade.price, 0x11223344);
    assert_int_equal(m.cross_trade.match, 0x5566778899AABBCCULL);
    assert_int_equal(m.cross_trade.cross_type, 'C');
}

static void test_broken_trade_B_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'B');
    wire_uint(&w, 0xDEADBEEFCAFEF00DULL, 8); /* 11 Match Number */
    itch_msg_t m = decode_spec(&w, 19);
    assert_int_equal(m.broken_trade.match, 0xDEADBEEFCAFEF00DULL);
}

static void test_noii_I_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'I');
    wire_uint(&w, 0x0101010101010101ULL, 8); /* 11 Paired Shares */
    wire_uint(&w, 0x0202020202020202ULL, 8); /* 19 Imbalance Shares */
    wire_char(&w, 'S');                      /* 27 Imbalance Direction */
    wire_alpha(&w, "AMZN", 8);               /* 28 Stock */
    wire_uint(&w, 0x03030303, 4);            /* 36 Far Price */
    wire_uint(&w, 0x04040404, 4);            /* 40 Near Price */
    wire_uint(&w, 0x05050505, 4);            /* 44 Current Reference Price */
    wire_char(&w, 'O');                      /* 48 Cross Type */
    wire_char(&w, 'L');                      /* 49 Price Variation Indicator */
    itch_msg_t m = decode_spec(&w, 50);
    const itch_noii_t *n = &m.noii;
    assert_int_equal(n->paired_shares, 0x0101010101010101ULL);
    assert_int_equal(n->imbalance_shares, 0x0202020202020202ULL);
    assert_int_equal(n->imbalance_direction, 'S');
    assert_stock(n->stock, "AMZN");
    assert_int_equal(n->far_price, 0x03030303);
    assert_int_equal(n->near_price, 0x04040404);
    assert_int_equal(n->reference_price, 0x05050505);
    assert_int_equal(n->cross_type, 'O');
    assert_int_equal(n->price_variation, 'L');
}

static void test_rpii_N_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'N');
    wire_alpha(&w, "ABCDEFGH", 8); /* 11 Stock, all 8 characters used */
    wire_char(&w, 'A');            /* 19 Interest Flag */
    itch_msg_t m = decode_spec(&w, 20);
    assert_memory_equal(m.rpii.stock, "ABCDEFGH", 8);
    assert_int_equal(m.rpii.interest_flag, 'A');
}

static void test_dlcr_O_decodes_from_spec_bytes(void **state)
{
    (void)state;
    struct wire w;
    header(&w, 'O');
    wire_alpha(&w, "DLIST", 8);              /* 11 Stock */
    wire_char(&w, 'Y');                      /* 19 Open Eligibility Status */
    wire_uint(&w, 0x01020304, 4);            /* 20 Minimum Allowable Price */
    wire_uint(&w, 0x05060708, 4);            /* 24 Maximum Allowable Price */
    wire_uint(&w, 0x090A0B0C, 4);            /* 28 Near Execution Price */
    wire_uint(&w, 0x0D0E0F1011121314ULL, 8); /* 32 Near Execution Time */
    wire_uint(&w, 0x15161718, 4);            /* 40 Lower Price Range Collar */
    wire_uint(&w, 0x191A1B1C, 4);            /* 44 Upper Price Range Collar */
    itch_msg_t m = decode_spec(&w, 48);
    const itch_dlcr_t *d = &m.dlcr;
    assert_stock(d->stock, "DLIST");
    assert_int_equal(d->open_eligible, 'Y');
    assert_int_equal(d->min_price, 0x01020304);
    assert_int_equal(d->max_price, 0x05060708);
    assert_int_equal(d->near_price, 0x090A0B0C);
    assert_int_equal(d->near_time, 0x0D0E0F1011121314ULL);
    assert_int_equal(d->lower_collar, 0x15161718);
    assert_int_equal(d->upper_collar, 0x191A1B1C);
}

/* The lengths of the specification, and no other type byte. */
static const struct {
    char type;
    size_t len;
} spec_lengths[] = {
    {'S', 12}, {'R', 39}, {'H', 25}, {'Y', 20}, {'L', 26}, {'V', 35}, {'W', 12}, {'K', 28},
    {'J', 35}, {'h', 21}, {'A', 36}, {'F', 40}, {'E', 31}, {'C', 36}, {'X', 23}, {'D', 19},
    {'U', 35}, {'P', 44}, {'Q', 40}, {'B', 19}, {'I', 50}, {'N', 20}, {'O', 48},
};
#define NTYPES (sizeof spec_lengths / sizeof spec_lengths[0])

static void test_msg_len_is_the_spec_length_for_each_type_and_0_for_other_bytes(void **state)
{
    (void)state;
    size_t known = 0;
    for (unsigned b = 0; b < 256; b++) {
        size_t want = 0;
        for (size_t i = 0; i < NTYPES; i++)
            if ((unsigned char)spec_lengths[i].type == b)
                want = spec_lengths[i].len;
        assert_int_equal(itch_msg_len((uint8_t)b), want);
        known += want != 0;
        assert_true(itch_msg_len((uint8_t)b) <= ITCH_MAX_LEN);
    }
    assert_int_equal(known, 23);
}

static void test_empty_buffer_is_truncated(void **state)
{
    (void)state;
    itch_msg_t m;
    uint8_t b = 'A';
    assert_int_equal(itch_decode(&b, 0, &m), ITCH_ETRUNCATED);
    assert_int_equal(itch_check(&b, 0), ITCH_ETRUNCATED);
}

static void test_every_byte_that_is_no_type_is_unknown_at_any_length(void **state)
{
    (void)state;
    uint8_t buf[ITCH_MAX_LEN + 8];
    memset(buf, 0, sizeof buf);
    itch_msg_t m;
    for (unsigned b = 0; b < 256; b++) {
        if (itch_msg_len((uint8_t)b) != 0)
            continue;
        buf[0] = (uint8_t)b;
        for (size_t len = 1; len <= sizeof buf; len++)
            assert_int_equal(itch_decode(buf, len, &m), ITCH_EUNKNOWN);
    }
}

static void test_every_length_but_the_types_own_is_truncated_or_oversize(void **state)
{
    (void)state;
    struct guard g;
    assert_int_equal(guard_open(&g), 0);
    uint8_t buf[ITCH_MAX_LEN + 16];
    memset(buf, 'x', sizeof buf);
    for (size_t i = 0; i < NTYPES; i++) {
        buf[0] = (uint8_t)spec_lengths[i].type;
        for (size_t len = 1; len <= sizeof buf; len++) {
            /* flush against the guard: a short message must not be read past */
            const uint8_t *p = guard_place(&g, buf, len);
            itch_msg_t m;
            itch_msg_t before;
            memset(&m, 0x5A, sizeof m);
            memcpy(&before, &m, sizeof m);
            int rc = itch_decode(p, len, &m);
            if (len < spec_lengths[i].len)
                assert_int_equal(rc, ITCH_ETRUNCATED);
            else if (len > spec_lengths[i].len)
                assert_int_equal(rc, ITCH_EOVERSIZE);
            else
                assert_int_equal(rc, 0);
            if (rc != 0)
                assert_memory_equal(&m, &before, sizeof m);
        }
    }
    guard_close(&g);
}

static void test_decode_then_encode_is_identity_on_random_bytes_of_every_type(void **state)
{
    (void)state;
    srand(12345);
    for (size_t i = 0; i < NTYPES; i++) {
        for (int round = 0; round < 2000; round++) {
            uint8_t in[ITCH_MAX_LEN], out[ITCH_MAX_LEN];
            size_t len = spec_lengths[i].len;
            for (size_t k = 0; k < len; k++)
                in[k] = (uint8_t)rand();
            in[0] = (uint8_t)spec_lengths[i].type;
            itch_msg_t m;
            assert_int_equal(itch_decode(in, len, &m), 0);
            assert_true(m.timestamp < ITCH_TS_MAX);
            assert_int_equal(itch_encode(&m, out, sizeof out), (int)len);
            assert_memory_equal(in, out, len);
        }
    }
}

static void test_timestamp_uses_all_48_bits(void **state)
{
    (void)state;
    struct wire w;
    w.n = 0;
    wire_char(&w, 'D');
    wire_uint(&w, 0, 2);
    wire_uint(&w, 0, 2);
    wire_uint(&w, ITCH_TS_MAX - 1, 6);
    wire_uint(&w, 7, 8);
    itch_msg_t m;
    assert_int_equal(itch_decode(w.b, w.n, &m), 0);
    assert_int_equal(m.timestamp, ITCH_TS_MAX - 1);
}

static void test_encode_refuses_small_buffers_unknown_types_and_wide_timestamps(void **state)
{
    (void)state;
    itch_msg_t m;
    memset(&m, 0, sizeof m);
    uint8_t buf[ITCH_MAX_LEN];
    memset(buf, 0xEE, sizeof buf);

    m.type = 'A';
    assert_int_equal(itch_encode(&m, buf, 35), ITCH_ENOBUFS);
    assert_int_equal(buf[0], 0xEE);
    assert_int_equal(itch_encode(&m, buf, 36), 36);

    m.type = 'Z';
    assert_int_equal(itch_encode(&m, buf, sizeof buf), ITCH_EUNKNOWN);

    m.type = 'D';
    m.timestamp = ITCH_TS_MAX;
    assert_int_equal(itch_encode(&m, buf, sizeof buf), ITCH_ERANGE);
}

static void test_add_order_A_encodes_without_its_attribution(void **state)
{
    (void)state;
    itch_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = 'A';
    memcpy(m.add.attribution, "GSCO", 4);
    uint8_t buf[ITCH_MAX_LEN];
    memset(buf, 0xEE, sizeof buf);
    assert_int_equal(itch_encode(&m, buf, sizeof buf), 36);
    assert_int_equal(buf[36], 0xEE);
}

static void test_stock_set_pads_with_spaces_and_stock_len_trims_them(void **state)
{
    (void)state;
    char s[ITCH_STOCK_LEN];
    itch_stock_set(s, "AAPL", 4);
    assert_memory_equal(s, "AAPL    ", 8);
    assert_int_equal(itch_stock_len(s), 4);
    itch_stock_set(s, "ABCDEFGH", 8);
    assert_memory_equal(s, "ABCDEFGH", 8);
    assert_int_equal(itch_stock_len(s), 8);
    itch_stock_set(s, "", 0);
    assert_memory_equal(s, "        ", 8);
    assert_int_equal(itch_stock_len(s), 0);
    itch_stock_set(s, "BRK A", 5); /* an inner space is part of the symbol */
    assert_int_equal(itch_stock_len(s), 5);
}

static void test_strerror_names_each_error(void **state)
{
    (void)state;
    assert_string_equal(itch_strerror(ITCH_ETRUNCATED),
                        "truncated: shorter than its type's length");
    assert_string_equal(itch_strerror(ITCH_EUNKNOWN), "unknown message type");
    assert_string_equal(itch_strerror(ITCH_EOVERSIZE), "oversize: longer than its type's length");
    assert_string_equal(itch_strerror(ITCH_ENOBUFS), "buffer too small for the message");
    assert_string_equal(itch_strerror(ITCH_ERANGE), "timestamp does not fit in 48 bits");
    assert_string_equal(itch_strerror(-EIO), "unexpected error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_event_S_decodes_from_spec_bytes),
        cmocka_unit_test(test_stock_directory_R_decodes_from_spec_bytes),
        cmocka_unit_test(test_trading_action_H_decodes_from_spec_bytes),
        cmocka_unit_test(test_reg_sho_Y_decodes_from_spec_bytes),
        cmocka_unit_test(test_participant_position_L_decodes_from_spec_bytes),
        cmocka_unit_test(test_mwcb_decline_V_decodes_price8_levels_from_spec_bytes),
        cmocka_unit_test(test_mwcb_status_W_decodes_from_spec_bytes),
        cmocka_unit_test(test_ipo_quoting_K_decodes_from_spec_bytes),
        cmocka_unit_test(test_luld_collar_J_decodes_from_spec_bytes),
        cmocka_unit_test(test_operational_halt_h_decodes_from_spec_bytes),
        cmocka_unit_test(test_add_order_A_decodes_from_spec_bytes_with_blank_attribution),
        cmocka_unit_test(test_add_order_mpid_F_decodes_from_spec_bytes),
        cmocka_unit_test(test_order_executed_E_decodes_from_spec_bytes),
        cmocka_unit_test(test_order_executed_price_C_decodes_from_spec_bytes),
        cmocka_unit_test(test_order_cancel_X_decodes_from_spec_bytes),
        cmocka_unit_test(test_order_delete_D_decodes_from_spec_bytes),
        cmocka_unit_test(test_order_replace_U_decodes_from_spec_bytes),
        cmocka_unit_test(test_trade_P_decodes_from_spec_bytes),
        cmocka_unit_test(test_cross_trade_Q_decodes_8_byte_shares_from_spec_bytes),
        cmocka_unit_test(test_broken_trade_B_decodes_from_spec_bytes),
        cmocka_unit_test(test_noii_I_decodes_from_spec_bytes),
        cmocka_unit_test(test_rpii_N_decodes_from_spec_bytes),
        cmocka_unit_test(test_dlcr_O_decodes_from_spec_bytes),
        cmocka_unit_test(test_msg_len_is_the_spec_length_for_each_type_and_0_for_other_bytes),
        cmocka_unit_test(test_empty_buffer_is_truncated),
        cmocka_unit_test(test_every_byte_that_is_no_type_is_unknown_at_any_length),
        cmocka_unit_test(test_every_length_but_the_types_own_is_truncated_or_oversize),
        cmocka_unit_test(test_decode_then_encode_is_identity_on_random_bytes_of_every_type),
        cmocka_unit_test(test_timestamp_uses_all_48_bits),
        cmocka_unit_test(test_encode_refuses_small_buffers_unknown_types_and_wide_timestamps),
        cmocka_unit_test(test_add_order_A_encodes_without_its_attribution),
        cmocka_unit_test(test_stock_set_pads_with_spaces_and_stock_len_trims_them),
        cmocka_unit_test(test_strerror_names_each_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
