-- gift_card_liability: the money owed on gift cards, rolled forward month by month from the cards'
-- transactions (API 2026-07 on; empty in 2.0, which lists no gift cards). One row per calendar
-- month in UTC (the month of the transaction's created_at) from the first month with a
-- transaction to the last one, gaps included (zeros). Counted: the transactions of gift cards that
-- are not deleted (a card the listing no longer holds has deleted_at); a transaction without a
-- typable created_at is in no month. Amounts are read as absolute values, so either sign
-- convention works (the API sends REDEEMING negative): ACTIVATION, RELOADING and IMPORTING add to
-- the liability, REDEEMING, VOIDING and EXPIRING take from it; REVERSING (which may undo either)
-- and any other or missing type are taken with the sign the API gives them. A transaction whose
-- amount is not a number counts in transaction_count and transactions_without_amount only. Only
-- typed columns are read.
--   month                        the first day of the month (date, UTC)
--   opening_liability            closing_liability of the month before (0 for the first month)
--   issued                       ACTIVATION + RELOADING + IMPORTING amounts (money put on cards)
--   redeemed                     REDEEMING amounts (spent with a card)
--   voided                       VOIDING amounts
--   expired                      EXPIRING amounts
--   other_change                 REVERSING and unknown types, signed as sent
--   net_change                   issued - redeemed - voided - expired + other_change
--   closing_liability            the outstanding liability at the month's end: the running sum of
--                                net_change
--   transaction_count            transactions in the month
--   transactions_without_amount  of those, the ones whose amount could not be typed
--   current_balance_total        on the last month's row only (NULL on the others, the cards keep
--                                no history): the liability now per the cards themselves, the sum
--                                of `balance` of the cards not deleted whose status is not VOIDED or
--                                EXPIRED. It equals that row's closing_liability when every card's
--                                balance is the sum of its transactions (as the API keeps it) and a
--                                voided or expired card was brought to zero by its VOIDING or
--                                EXPIRING transaction; a difference means the two disagree.
CREATE OR REPLACE VIEW gift_card_liability WITH (security_invoker = true) AS
WITH cards AS (
    SELECT g.id, g.status, g.balance
    FROM lightspeed_gift_cards g
    WHERE g.deleted_at IS NULL
),
per_month AS (
    SELECT
        date_trunc('month', t.created_at AT TIME ZONE 'UTC')::date AS month,
        SUM(abs(t.amount)) FILTER (WHERE t.type IN ('ACTIVATION', 'RELOADING', 'IMPORTING')) AS issued,
        SUM(abs(t.amount)) FILTER (WHERE t.type = 'REDEEMING') AS redeemed,
        SUM(abs(t.amount)) FILTER (WHERE t.type = 'VOIDING') AS voided,
        SUM(abs(t.amount)) FILTER (WHERE t.type = 'EXPIRING') AS expired,
        SUM(t.amount) FILTER (
            WHERE t.type IS NULL
               OR t.type NOT IN ('ACTIVATION', 'RELOADING', 'IMPORTING', 'REDEEMING', 'VOIDING', 'EXPIRING')
        ) AS other_change,
        COUNT(*) AS transaction_count,
        COUNT(*) FILTER (WHERE t.amount IS NULL) AS transactions_without_amount
    FROM lightspeed_gift_card_transactions t
    JOIN cards c ON c.id = t.gift_card_id
    WHERE t.created_at IS NOT NULL
    GROUP BY 1
),
months AS (
    SELECT g.month::date AS month
    FROM (SELECT MIN(month) AS first_month, MAX(month) AS last_month FROM per_month) r
    CROSS JOIN LATERAL generate_series(r.first_month::timestamp, r.last_month::timestamp, INTERVAL '1 month') AS g(month)
),
filled AS (
    SELECT
        m.month,
        COALESCE(p.issued, 0) AS issued,
        COALESCE(p.redeemed, 0) AS redeemed,
        COALESCE(p.voided, 0) AS voided,
        COALESCE(p.expired, 0) AS expired,
        COALESCE(p.other_change, 0) AS other_change,
        COALESCE(p.issued, 0) - COALESCE(p.redeemed, 0) - COALESCE(p.voided, 0) - COALESCE(p.expired, 0)
            + COALESCE(p.other_change, 0) AS net_change,
        COALESCE(p.transaction_count, 0) AS transaction_count,
        COALESCE(p.transactions_without_amount, 0) AS transactions_without_amount
    FROM months m
    LEFT JOIN per_month p ON p.month = m.month
),
rolled AS (
    SELECT f.*, SUM(f.net_change) OVER (ORDER BY f.month) AS closing_liability
    FROM filled f
)
SELECT
    r.month,
    r.closing_liability - r.net_change AS opening_liability,
    r.issued,
    r.redeemed,
    r.voided,
    r.expired,
    r.other_change,
    r.net_change,
    r.closing_liability,
    r.transaction_count,
    r.transactions_without_amount,
    CASE WHEN r.month = (SELECT MAX(month) FROM per_month) THEN (
        SELECT COALESCE(SUM(c.balance), 0) FROM cards c WHERE c.status IS NULL OR c.status NOT IN ('VOIDED', 'EXPIRED')
    ) END AS current_balance_total
FROM rolled r;
