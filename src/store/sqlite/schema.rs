//! The embedded store's schema, as migrations applied in order; `PRAGMA user_version` counts
//! those applied.

pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE messages (
    seq            INTEGER PRIMARY KEY,   -- commit order: the feeds' cursor
    id             TEXT NOT NULL UNIQUE,  -- the gateway's id (UUIDv7), the event's id
    sender         TEXT NOT NULL,         -- agency id
    native_id      TEXT NOT NULL,         -- the sender's own message id
    type           TEXT NOT NULL,
    subject        TEXT,                  -- case number
    content_sha256 TEXT NOT NULL,         -- of the event without its id
    received_at    TEXT NOT NULL,
    stripped       TEXT NOT NULL,         -- JSON array of removed pointers
    event          TEXT NOT NULL,         -- the canonical CloudEvent
    UNIQUE (sender, native_id)
);
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    action      TEXT NOT NULL,            -- accepted | duplicate | conflict | refused
    sender      TEXT,
    message_id  TEXT,
    body_sha256 TEXT NOT NULL,
    code        TEXT,
    detail      TEXT                      -- pointers only, never content
);
"#,
    r#"
CREATE TABLE deliveries (
    message_seq INTEGER NOT NULL REFERENCES messages (seq),
    recipient   TEXT NOT NULL,            -- agency id, hub:REGION or feed name
    role        TEXT NOT NULL,            -- primary | copy
    rules       TEXT NOT NULL,            -- JSON array of the rules that chose it
    event       TEXT NOT NULL,            -- the recipient's copy of the event
    state       TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (message_seq, recipient)
);
CREATE INDEX deliveries_by_recipient ON deliveries (recipient, message_seq);
"#,
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE subscriptions (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,             -- the recipient whose feed it reads
    spec       TEXT NOT NULL,             -- JSON: filter and target (webhook or cursor)
    cursor     INTEGER NOT NULL,          -- feed position: enqueued (webhook) or acknowledged (cursor)
    disabled   TEXT,                      -- why, when disabled (410 Gone)
    source     TEXT NOT NULL,             -- config | api
    created_at TEXT NOT NULL
);
CREATE TABLE webhook_attempts (
    id            INTEGER PRIMARY KEY,
    subscription  TEXT NOT NULL,
    message_seq   INTEGER NOT NULL,
    webhook_id    TEXT NOT NULL,          -- stable across retries and replays
    thread        TEXT NOT NULL,          -- the case thread: messages of one reach an endpoint in order
    state         TEXT NOT NULL,          -- pending | delivered | dead
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,       -- unix ms: due, or leased until
    leased        INTEGER NOT NULL DEFAULT 0,
    last_status   INTEGER,
    last_error    TEXT,
    last_response TEXT,                   -- a 4xx answer's body, kept for dead letters (truncated)
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (subscription, message_seq)
);
CREATE INDEX attempts_due ON webhook_attempts (subscription, state, next_at);
CREATE INDEX attempts_thread ON webhook_attempts (subscription, thread, message_seq);
CREATE INDEX attempts_by_message ON webhook_attempts (message_seq);
"#,
    r#"
ALTER TABLE messages ADD COLUMN received_ms INTEGER;  -- unix ms of received_at (the gateway's clock)
ALTER TABLE messages ADD COLUMN in_reply_to TEXT;      -- the sender's reference to an earlier message
CREATE INDEX messages_by_native_id ON messages (native_id);
CREATE TABLE threads (
    id          TEXT PRIMARY KEY,          -- the id of the message that opened it
    case_number TEXT,
    opened_ms   INTEGER NOT NULL
);
CREATE INDEX threads_by_case ON threads (case_number);
CREATE TABLE thread_messages (
    thread_id  TEXT NOT NULL REFERENCES threads (id),
    message_id TEXT NOT NULL UNIQUE,
    seq        INTEGER NOT NULL,           -- commit order
    kind       TEXT NOT NULL,              -- request | reply | progress | notice | message
    type       TEXT NOT NULL,
    sender     TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    flag       TEXT,                       -- why it is flagged (a reply to an unknown or answered request)
    PRIMARY KEY (thread_id, message_id)
);
CREATE TABLE obligations (
    id           INTEGER PRIMARY KEY,
    thread_id    TEXT NOT NULL REFERENCES threads (id),
    request_id   TEXT NOT NULL,            -- the message that asks
    request_type TEXT NOT NULL,
    requester    TEXT NOT NULL,
    awaiting     TEXT NOT NULL,            -- the agency that owes the reply
    opened_ms    INTEGER NOT NULL,
    deadline_ms  INTEGER NOT NULL,
    state        TEXT NOT NULL,            -- open | overdue | answered
    answered_by  TEXT,                     -- the reply
    answered_ms  INTEGER,
    late         INTEGER,
    outcome      TEXT,                     -- answered | cannot_determine
    UNIQUE (request_id, awaiting)
);
CREATE INDEX obligations_due ON obligations (state, deadline_ms);
CREATE INDEX obligations_by_thread ON obligations (thread_id);
"#,
    // The audit log becomes a hash chain (docs/security.md). The unchained records of earlier
    // versions are kept aside, unchanged.
    r#"
ALTER TABLE audit RENAME TO audit_unchained;
CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY,           -- 1, 2, 3, ... with no gap
    record TEXT NOT NULL,                 -- canonical JSON: seq, at, alg and the metadata
    prev   TEXT NOT NULL,                 -- the previous record's hash (zeros for the first)
    hash   TEXT NOT NULL                  -- alg(prev "\n" record), hex
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,        -- the record whose hash is signed
    hash      TEXT NOT NULL,
    at        TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL               -- Ed25519, hex
);
"#,
    // A copy that is the message's event as it is is not written twice (docs/performance.md).
    r#"
CREATE TABLE deliveries_next (
    message_seq INTEGER NOT NULL REFERENCES messages (seq),
    recipient   TEXT NOT NULL,            -- agency id, hub:REGION or feed name
    role        TEXT NOT NULL,            -- primary | copy
    rules       TEXT NOT NULL,            -- JSON array of the rules that chose it
    event       TEXT,                     -- the recipient's copy of the event; NULL: the message's event as it is
    state       TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (message_seq, recipient)
);
INSERT INTO deliveries_next (message_seq, recipient, role, rules, event, state)
    SELECT d.message_seq, d.recipient, d.role, d.rules, CASE WHEN d.event = m.event THEN NULL ELSE d.event END, d.state
    FROM deliveries d JOIN messages m ON m.seq = d.message_seq;
DROP TABLE deliveries;
ALTER TABLE deliveries_next RENAME TO deliveries;
CREATE INDEX deliveries_by_recipient ON deliveries (recipient, message_seq);
"#,
    // A lease reads the due heads of the case threads from an index of them only, however long
    // the queue (docs/performance.md).
    r#"
ALTER TABLE webhook_attempts ADD COLUMN head INTEGER NOT NULL DEFAULT 0; -- 1: its thread's oldest pending attempt
UPDATE webhook_attempts SET head = 1 WHERE state = 'pending' AND NOT EXISTS (
    SELECT 1 FROM webhook_attempts b WHERE b.subscription = webhook_attempts.subscription AND b.thread = webhook_attempts.thread
      AND b.state = 'pending' AND b.message_seq < webhook_attempts.message_seq);
DROP INDEX attempts_due;
CREATE INDEX attempts_heads ON webhook_attempts (subscription, next_at) WHERE state = 'pending' AND head = 1;
"#,
    // The routing rules whose condition failed on a message (docs/routing.md), for its trace.
    r#"
ALTER TABLE messages ADD COLUMN rule_errors TEXT; -- JSON array of `rule: why`; NULL: none
"#,
    // Console sessions (docs/console.md): the SHA-256 of their ids only.
    r#"
CREATE TABLE sessions (
    id_sha256  TEXT PRIMARY KEY,
    operator   TEXT NOT NULL,
    role       TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE counts (
    hour    INTEGER NOT NULL,             -- unix hours
    outcome TEXT NOT NULL,                -- accepted | resent | refused
    type    TEXT NOT NULL,
    sender  TEXT NOT NULL,
    code    TEXT NOT NULL,                -- the refusal code, or ''
    n       INTEGER NOT NULL,
    PRIMARY KEY (hour, outcome, type, sender, code)
) WITHOUT ROWID;
INSERT INTO counts (hour, outcome, type, sender, code, n)
    SELECT received_ms / 3600000, 'accepted', type, sender, '', count(*) FROM messages WHERE received_ms IS NOT NULL GROUP BY 1, 3, 4;
-- The console's search: by case number, sender, type and time.
CREATE INDEX messages_by_subject ON messages (subject, seq);
CREATE INDEX messages_by_sender ON messages (sender, seq);
CREATE INDEX messages_by_type ON messages (type, seq);
CREATE INDEX messages_by_received ON messages (received_ms);
"#,
    // Rule changes applied from the console or the admin API (docs/console.md).
    r#"
CREATE TABLE rule_changes (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    by      TEXT NOT NULL,
    reverts INTEGER,                      -- the change it rolled back
    note    TEXT,
    before  TEXT NOT NULL,                -- rules.yaml before
    after   TEXT NOT NULL                 -- and after
);
-- The console's delivery page: how each subscription's endpoint last answered.
ALTER TABLE subscriptions ADD COLUMN last_success_at TEXT;
ALTER TABLE subscriptions ADD COLUMN last_error TEXT;
ALTER TABLE subscriptions ADD COLUMN last_error_at TEXT;
"#,
    // The replies page's figures per agency and Beijing day of the obligations' opening, kept as
    // obligations open, fall overdue and are answered (docs/console.md, "Performance"); the
    // obligations stored so far counted once here.
    r#"
CREATE TABLE reply_figures (
    day      INTEGER NOT NULL,            -- Beijing day of the opening: (opened_ms + 8 h) / 24 h
    agency   TEXT NOT NULL,               -- the agency that owes the replies
    received INTEGER NOT NULL DEFAULT 0,
    on_time  INTEGER NOT NULL DEFAULT 0,
    late     INTEGER NOT NULL DEFAULT 0,
    overdue  INTEGER NOT NULL DEFAULT 0,  -- marked overdue and not answered yet
    times    TEXT NOT NULL DEFAULT '',    -- the reply times, whole seconds, space-separated
    PRIMARY KEY (day, agency)
) WITHOUT ROWID;
INSERT INTO reply_figures (day, agency, received, on_time, late, overdue, times)
    SELECT (opened_ms + 28800000) / 86400000, awaiting, count(*),
           sum(state = 'answered' AND NOT coalesce(late, 0)), sum(state = 'answered' AND coalesce(late, 0)),
           sum(state = 'overdue'),
           coalesce(group_concat(CASE WHEN answered_ms IS NOT NULL THEN max(0, (answered_ms - opened_ms) / 1000) END, ' '), '')
    FROM obligations GROUP BY 1, 2;
-- The obligations of a part of a day, and those owed, soonest deadline first.
CREATE INDEX obligations_by_opening ON obligations (opened_ms);
CREATE INDEX obligations_owed ON obligations (deadline_ms) WHERE state != 'answered';
CREATE INDEX obligations_owed_by ON obligations (awaiting, deadline_ms) WHERE state != 'answered';
"#,
    // A case thread's oldest pending attempt (for the head that follows a finished one, and for
    // a new attempt's question whether its thread has one pending) found at once, instead of
    // after every attempt of the thread already delivered (docs/performance.md).
    r#"
CREATE INDEX attempts_pending ON webhook_attempts (subscription, thread, message_seq) WHERE state = 'pending';
"#,
];
