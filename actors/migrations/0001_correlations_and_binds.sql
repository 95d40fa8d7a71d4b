-- smpp-connector schema, version 1.
-- smpp.message_correlations: one row per submitted segment, written when the SMSC
-- answered submit_sm with ESME_ROK; receipts are matched by (operator_id,
-- operator_message_id). Rows expire 72 h after submission (TTL sweep).
CREATE SCHEMA IF NOT EXISTS smpp;
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS smpp.message_correlations (
    message_id          text        NOT NULL,
    segment_index       integer     NOT NULL CHECK (segment_index >= 1),
    segment_count       integer     NOT NULL CHECK (segment_count >= 1),
    operator_id         text        NOT NULL,
    direction           text        NOT NULL CHECK (direction IN ('trx', 'tx', 'rx')),
    bind_id             integer     NOT NULL CHECK (bind_id >= 0),
    operator_message_id text        NOT NULL,
    submitted_at        timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    dlr_status          text,
    dlr_received_at     timestamptz,
    PRIMARY KEY (message_id, segment_index)
);

CREATE INDEX IF NOT EXISTS message_correlations_lookup
    ON smpp.message_correlations (operator_id, operator_message_id);
CREATE INDEX IF NOT EXISTS message_correlations_expiry
    ON smpp.message_correlations (expires_at);

-- ops.smpp_binds: per-bind settings operators change at runtime (window reloaded
-- every 60 s; enabled = false keeps a bind down).
CREATE TABLE IF NOT EXISTS ops.smpp_binds (
    operator_id text        NOT NULL,
    direction   text        NOT NULL CHECK (direction IN ('trx', 'tx', 'rx')),
    bind_id     integer     NOT NULL CHECK (bind_id >= 0),
    "window"    integer     NOT NULL DEFAULT 100 CHECK ("window" BETWEEN 1 AND 10000),
    enabled     boolean     NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operator_id, direction, bind_id)
);
