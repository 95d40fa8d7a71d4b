-- smpp-connector schema, version 3.
-- An SMSC may hand out a message id again within the 72 hours a row lives (a restart,
-- a small DEC counter wrapping): a receipt marks the newest row with its id only. The
-- lookup index carries submitted_at so that newest row is the first index entry.
-- (Built in the migration's transaction: it blocks writes to the table while it builds;
-- on a large table apply it in a quiet hour.)
CREATE INDEX IF NOT EXISTS message_correlations_lookup_newest
    ON smpp.message_correlations (operator_id, operator_message_id, submitted_at DESC);
DROP INDEX IF EXISTS smpp.message_correlations_lookup;
