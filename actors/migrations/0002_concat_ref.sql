-- smpp-connector schema, version 2.
-- concat_ref: the concatenation reference every segment of a long message carries
-- (UDH or SAR). A redelivered message resends its missing segments under the same
-- reference, so the handset can still join them with the parts already delivered.
ALTER TABLE smpp.message_correlations ADD COLUMN IF NOT EXISTS concat_ref integer
    CHECK (concat_ref BETWEEN 0 AND 65535);
