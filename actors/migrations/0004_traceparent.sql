-- smpp-connector schema, version 4.
-- traceparent: the W3C trace context of the dispatch that sent the segment, so the trace
-- of its delivery receipt (up to 72 hours later) can link to it. NULL for rows written
-- before this version.
ALTER TABLE smpp.message_correlations ADD COLUMN IF NOT EXISTS traceparent text;
