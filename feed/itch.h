/*
 * itch.h - Nasdaq TotalView-ITCH 5.0 messages: their types, a decoder and an
 * encoder.
 *
 * An ITCH message is a type byte followed by fields at fixed offsets; every
 * type has one exact length, and every message starts with the same header:
 * type (1), stock locate (2), tracking number (2), timestamp (6, nanoseconds
 * since midnight). Integers are unsigned big-endian. Price(4) fields carry 4
 * implied decimals (1012500 is $101.25), which is exactly tickd's fixed-point
 * price, so they are kept as the integers on the wire; Price(8) fields (only
 * the MWCB decline levels) carry 8. Alpha fields are left-justified and
 * padded with spaces, never NUL-terminated; they are kept as raw bytes.
 *
 * itch_decode() turns the bytes of one message into a itch_msg_t: a
 * header and a union with one member per type. It checks the length once
 * (itch_check), never reads past the length it is given, allocates nothing
 * and copies nothing but the fields into the struct. A message whose length
 * is not its type's length is an error, whichever way it differs: the framing
 * (BinaryFILE, MoldUDP64) gives every message its length, and a message that
 * disagrees with its type cannot be trusted field by field.
 *
 * itch_encode() is the exact inverse; the generator and the tests use it.
 *
 * Errors are negative errno values (enum itch_err); itch_strerror() names
 * them for a log line.
 */
#ifndef TICKD_FEED_ITCH_H
#define TICKD_FEED_ITCH_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* The message types of ITCH 5.0, by their type byte. */
enum itch_type {
    ITCH_SYSTEM_EVENT = 'S',         /* 12: start/end of messages, system and market hours */
    ITCH_STOCK_DIRECTORY = 'R',      /* 39: one per stock at the start of the day */
    ITCH_TRADING_ACTION = 'H',       /* 25: halted, paused, quotation only, trading */
    ITCH_REG_SHO = 'Y',              /* 20: Reg SHO short sale price test restriction */
    ITCH_PARTICIPANT_POSITION = 'L', /* 26: market participant position */
    ITCH_MWCB_DECLINE = 'V',         /* 35: market-wide circuit breaker decline levels */
    ITCH_MWCB_STATUS = 'W',          /* 12: market-wide circuit breaker breached */
    ITCH_IPO_QUOTING = 'K',          /* 28: IPO quoting period update */
    ITCH_LULD_COLLAR = 'J',          /* 35: limit up-limit down auction collar */
    ITCH_OPERATIONAL_HALT = 'h',     /* 21: operational halt */
    ITCH_ADD_ORDER = 'A',            /* 36: add order, no attribution */
    ITCH_ADD_ORDER_MPID = 'F',       /* 40: add order with MPID attribution */
    ITCH_ORDER_EXECUTED = 'E',       /* 31: order executed at its display price */
    ITCH_ORDER_EXECUTED_PRICE = 'C', /* 36: order executed at another price */
    ITCH_ORDER_CANCEL = 'X',         /* 23: order partially cancelled */
    ITCH_ORDER_DELETE = 'D',         /* 19: order deleted */
    ITCH_ORDER_REPLACE = 'U',        /* 35: order replaced by a new one */
    ITCH_TRADE = 'P',                /* 44: trade of a non-displayed order */
    ITCH_CROSS_TRADE = 'Q',          /* 40: cross trade */
    ITCH_BROKEN_TRADE = 'B',         /* 19: broken trade */
    ITCH_NOII = 'I',                 /* 50: net order imbalance indicator */
    ITCH_RPII = 'N',                 /* 20: retail price improvement indicator */
    ITCH_DLCR = 'O',                 /* 48: direct listing with capital raise price discovery */
};

#define ITCH_MAX_LEN   50                  /* the longest type, NOII */
#define ITCH_STOCK_LEN 8                   /* the Stock field: symbol, space padded */
#define ITCH_MPID_LEN  4                   /* MPID and Attribution fields */
#define ITCH_TS_MAX    ((uint64_t)1 << 48) /* timestamps are below this */

/* Offsets of the fields a reader takes straight from the bytes of an order
 * message (market_itch_raw()), after itch_check() has passed. */
enum itch_offset {
    ITCH_AT_LOCATE = 1,           /* every type: Stock Locate (2) */
    ITCH_AT_TIMESTAMP = 5,        /* every type: Timestamp (6) */
    ITCH_AT_REF = 11,             /* A F E C X D: Order Reference Number; U: the original */
    ITCH_AT_ADD_SIDE = 19,        /* A F: Buy/Sell Indicator (1) */
    ITCH_AT_ADD_SHARES = 20,      /* A F: Shares (4) */
    ITCH_AT_ADD_STOCK = 24,       /* A F: Stock (8) */
    ITCH_AT_ADD_PRICE = 32,       /* A F: Price (4) */
    ITCH_AT_REF_SHARES = 19,      /* E C: Executed Shares; X: Cancelled Shares (4) */
    ITCH_AT_EXEC_PRINTABLE = 31,  /* C: Printable (1) */
    ITCH_AT_EXEC_PRICE = 32,      /* C: Execution Price (4) */
    ITCH_AT_REPLACE_NEW_REF = 19, /* U: New Order Reference Number (8) */
    ITCH_AT_REPLACE_SHARES = 27,  /* U: Shares (4) */
    ITCH_AT_REPLACE_PRICE = 31,   /* U: Price (4) */
};

/* Errors of itch_check, itch_decode and itch_encode. */
enum itch_err {
    ITCH_ETRUNCATED = -ENODATA, /* shorter than its type's length (or empty) */
    ITCH_EUNKNOWN = -ENOMSG,    /* type byte not defined by ITCH 5.0 */
    ITCH_EOVERSIZE = -EMSGSIZE, /* longer than its type's length */
    ITCH_ENOBUFS = -ENOBUFS,    /* itch_encode: the buffer is too small */
    ITCH_ERANGE = -ERANGE,      /* itch_encode: timestamp does not fit in 48 bits */
};

/* S: the day's milestones. */
typedef struct itch_system_event {
    char event_code; /* O start of messages, S start of system hours, Q start of market
                        hours, M end of market hours, E end of system hours, C end of messages */
} itch_system_event_t;

/* R: one per stock, before any of its orders. */
typedef struct itch_stock_directory {
    char stock[ITCH_STOCK_LEN];
    char market_category;      /* Q, G, S (Nasdaq tiers), N, A, P, Z, V, space */
    char financial_status;     /* D deficient, E delinquent, ... N normal, space */
    uint32_t round_lot_size;   /* shares in a round lot */
    char round_lots_only;      /* Y or N */
    char issue_classification; /* A, B, C common stock, ... */
    char issue_subtype[2];     /* alpha, space padded */
    char authenticity;         /* P live/production, T test */
    char short_sale_threshold; /* Y, N, space */
    char ipo_flag;             /* Y, N, space */
    char luld_tier;            /* LULD reference price tier: 1, 2, space */
    char etp_flag;             /* Y, N, space */
    uint32_t etp_leverage;     /* ETP leverage factor */
    char inverse;              /* Y or N: inverse ETP */
} itch_stock_directory_t;

/* H: trading state of one stock. */
typedef struct itch_trading_action {
    char stock[ITCH_STOCK_LEN];
    char trading_state; /* H halted, P paused, Q quotation only, T trading */
    char reserved;
    char reason[4]; /* trading action reason code, space padded */
} itch_trading_action_t;

/* Y: Reg SHO short sale price test. */
typedef struct itch_reg_sho {
    char stock[ITCH_STOCK_LEN];
    char action; /* 0 no test, 1 test in effect (intra-day drop), 2 test remains in effect */
} itch_reg_sho_t;

/* L: a market participant's position in one stock. */
typedef struct itch_participant_position {
    char mpid[ITCH_MPID_LEN];
    char stock[ITCH_STOCK_LEN];
    char primary_market_maker; /* Y or N */
    char market_maker_mode;    /* N normal, P passive, S syndicate, R pre-syndicate, L penalty */
    char participant_state;    /* A active, E excused, W withdrawn, S suspended, D deleted */
} itch_participant_position_t;

/* V: the three MWCB decline levels, Price(8): 8 implied decimals. */
typedef struct itch_mwcb_decline {
    uint64_t level1;
    uint64_t level2;
    uint64_t level3;
} itch_mwcb_decline_t;

/* W: an MWCB level was breached. */
typedef struct itch_mwcb_status {
    char breached_level; /* 1, 2 or 3 */
} itch_mwcb_status_t;

/* K: anticipated quotation release time of an IPO. */
typedef struct itch_ipo_quoting {
    char stock[ITCH_STOCK_LEN];
    uint32_t release_time;  /* seconds since midnight */
    char release_qualifier; /* A anticipated, C cancelled or postponed */
    uint32_t ipo_price;     /* Price(4) */
} itch_ipo_quoting_t;

/* J: LULD auction collar. */
typedef struct itch_luld_collar {
    char stock[ITCH_STOCK_LEN];
    uint32_t reference_price; /* Price(4) */
    uint32_t upper_price;     /* Price(4) */
    uint32_t lower_price;     /* Price(4) */
    uint32_t extension;       /* number of extensions to the reopening auction */
} itch_luld_collar_t;

/* h: operational halt on one market. */
typedef struct itch_operational_halt {
    char stock[ITCH_STOCK_LEN];
    char market_code; /* Q Nasdaq, B BX, X PSX */
    char action;      /* H halted, T resumed */
} itch_operational_halt_t;

/* A and F: a displayed order joins the book. A carries no attribution; the
 * decoder sets it to four spaces, and the encoder ignores it for A. */
typedef struct itch_add_order {
    uint64_t order_ref; /* unique for the day */
    char side;          /* B buy, S sell */
    uint32_t shares;
    char stock[ITCH_STOCK_LEN];
    uint32_t price;                  /* Price(4) */
    char attribution[ITCH_MPID_LEN]; /* F only: the MPID */
} itch_add_order_t;

/* E: part or all of an order executed at its display price. */
typedef struct itch_order_executed {
    uint64_t order_ref;
    uint32_t shares; /* executed shares */
    uint64_t match;  /* match number, shared with the contra side */
} itch_order_executed_t;

/* C: part or all of an order executed at a price other than its display price. */
typedef struct itch_order_executed_price {
    uint64_t order_ref;
    uint32_t shares; /* executed shares */
    uint64_t match;
    char printable; /* Y printable (counts for volume), N not */
    uint32_t price; /* execution price, Price(4) */
} itch_order_executed_price_t;

/* X: part of an order cancelled. */
typedef struct itch_order_cancel {
    uint64_t order_ref;
    uint32_t shares; /* cancelled shares */
} itch_order_cancel_t;

/* D: an order leaves the book. */
typedef struct itch_order_delete {
    uint64_t order_ref;
} itch_order_delete_t;

/* U: an order is replaced: the original leaves the book, the new one joins it
 * with the original's side and stock. */
typedef struct itch_order_replace {
    uint64_t orig_ref;
    uint64_t new_ref;
    uint32_t shares;
    uint32_t price; /* Price(4) */
} itch_order_replace_t;

/* P: a non-displayed order traded. */
typedef struct itch_trade {
    uint64_t order_ref; /* zero on today's feed */
    char side;
    uint32_t shares;
    char stock[ITCH_STOCK_LEN];
    uint32_t price; /* Price(4) */
    uint64_t match;
} itch_trade_t;

/* Q: an opening, closing, IPO or halt cross. */
typedef struct itch_cross_trade {
    uint64_t shares; /* 8 bytes on the wire */
    char stock[ITCH_STOCK_LEN];
    uint32_t price; /* Price(4) */
    uint64_t match;
    char cross_type; /* O opening, C closing, H IPO/halt, I intraday/extended */
} itch_cross_trade_t;

/* B: an earlier execution was broken. */
typedef struct itch_broken_trade {
    uint64_t match;
} itch_broken_trade_t;

/* I: net order imbalance indicator. */
typedef struct itch_noii {
    uint64_t paired_shares;
    uint64_t imbalance_shares;
    char imbalance_direction; /* B buy, S sell, N none, O insufficient orders, P paused */
    char stock[ITCH_STOCK_LEN];
    uint32_t far_price;       /* Price(4) */
    uint32_t near_price;      /* Price(4) */
    uint32_t reference_price; /* Price(4) */
    char cross_type;          /* O, C, H, A */
    char price_variation;     /* L under 1%, 1..9, A, B, C, space */
} itch_noii_t;

/* N: retail price improvement interest. */
typedef struct itch_rpii {
    char stock[ITCH_STOCK_LEN];
    char interest_flag; /* B buy side, S sell side, A both, N none */
} itch_rpii_t;

/* O: direct listing with capital raise price discovery. */
typedef struct itch_dlcr {
    char stock[ITCH_STOCK_LEN];
    char open_eligible;    /* Y or N */
    uint32_t min_price;    /* minimum allowable price, Price(4) */
    uint32_t max_price;    /* maximum allowable price, Price(4) */
    uint32_t near_price;   /* near execution price, Price(4) */
    uint64_t near_time;    /* near execution time */
    uint32_t lower_collar; /* lower price range collar, Price(4) */
    uint32_t upper_collar; /* upper price range collar, Price(4) */
} itch_dlcr_t;

/* One decoded message: the common header, then the member of the union that
 * `type` names (A and F share `add`). */
typedef struct itch_msg {
    uint8_t type;          /* enum itch_type */
    uint16_t stock_locate; /* the stock's locate code for the day; 0 for market-wide messages */
    uint16_t tracking;     /* Nasdaq internal tracking number */
    uint64_t timestamp;    /* nanoseconds since midnight, below ITCH_TS_MAX */
    union {
        itch_system_event_t system_event;           /* S */
        itch_stock_directory_t stock_directory;     /* R */
        itch_trading_action_t trading_action;       /* H */
        itch_reg_sho_t reg_sho;                     /* Y */
        itch_participant_position_t participant;    /* L */
        itch_mwcb_decline_t mwcb_decline;           /* V */
        itch_mwcb_status_t mwcb_status;             /* W */
        itch_ipo_quoting_t ipo_quoting;             /* K */
        itch_luld_collar_t luld_collar;             /* J */
        itch_operational_halt_t operational_halt;   /* h */
        itch_add_order_t add;                       /* A, F */
        itch_order_executed_t executed;             /* E */
        itch_order_executed_price_t executed_price; /* C */
        itch_order_cancel_t cancel;                 /* X */
        itch_order_delete_t del;                    /* D */
        itch_order_replace_t replace;               /* U */
        itch_trade_t trade;                         /* P */
        itch_cross_trade_t cross_trade;             /* Q */
        itch_broken_trade_t broken_trade;           /* B */
        itch_noii_t noii;                           /* I */
        itch_rpii_t rpii;                           /* N */
        itch_dlcr_t dlcr;                           /* O */
    };
} itch_msg_t;

/* Length of each type indexed by its type byte; 0 for bytes that are no type. */
extern const uint8_t itch_lens[256];

/* The exact length of a message of this type, or 0 if the byte is no ITCH 5.0 type. */
static inline size_t itch_msg_len(uint8_t type)
{
    return itch_lens[type];
}

/* Whether buf[0..len) has a known type and exactly that type's length: 0, or
 * ITCH_ETRUNCATED (empty or short), ITCH_EUNKNOWN, ITCH_EOVERSIZE. Reads at
 * most the first byte. The framings use it to reject a message without
 * decoding it. */
static inline int itch_check(const uint8_t *buf, size_t len)
{
    if (__builtin_expect(len == 0, 0))
        return ITCH_ETRUNCATED;
    size_t want = itch_lens[buf[0]];
    if (__builtin_expect(want == 0, 0))
        return ITCH_EUNKNOWN;
    if (__builtin_expect(len != want, 0))
        return len < want ? ITCH_ETRUNCATED : ITCH_EOVERSIZE;
    return 0;
}

/* Decode the message in buf[0..len) into *msg. Returns 0, or the error of
 * itch_check() with *msg untouched. */
int itch_decode(const uint8_t *buf, size_t len, itch_msg_t *msg);

/* Encode *msg into buf[0..cap). Returns the number of bytes written (the
 * type's length), ITCH_EUNKNOWN, ITCH_ERANGE or ITCH_ENOBUFS (nothing written). */
int itch_encode(const itch_msg_t *msg, uint8_t *buf, size_t cap);

/* Set an 8-byte Stock field from s[0..len) (len <= ITCH_STOCK_LEN), space padded. */
void itch_stock_set(char stock[ITCH_STOCK_LEN], const char *s, size_t len);

/* The length of the symbol in a Stock field, trailing spaces excluded. */
size_t itch_stock_len(const char stock[ITCH_STOCK_LEN]);

/* A short description of an error returned by this module, for a log line. */
const char *itch_strerror(int err);

#endif
