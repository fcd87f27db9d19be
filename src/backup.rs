//! The backup format: a consistent copy of a whole `spares` service (master
//! data and policies, the full movement log, reservations, idempotency keys,
//! jobs, the policy history and other records) that does not depend on the storage engine. A
//! backup taken from sled restores into sled today and into any later
//! backend (the PostgreSQL one moves data with this format).
//!
//! # Format (version 1)
//!
//! UTF-8 text, one JSON object per line (JSON Lines), each with a `type`:
//!
//! | `type` | fields | how many |
//! |---|---|---|
//! | `header` | `format` (`"spares-backup"`), `version` (1), `created_at` (RFC 3339), `spares_version` | first line, once |
//! | `network` | `record`: one master-data record, `{"Location": {...}}`, `{"Lane": ...}`, `{"Part": ...}`, `{"MachineModel": ...}`, `{"Fleet": ...}`, `{"Demand": ...}` or `{"Policy": ...}` | any |
//! | `entry` | `entry`: one movement-log entry (`sequence`, `recorded_at`, `cause`, `legs` of `account` and signed `delta`, `shipment`, `actor` of `id` and `role`; a backup without `actor` reads as `unknown (before layout 4)`) | in increasing `sequence` |
//! | `reservation` | `reservation`: a reservation in its state at the cut | any |
//! | `idempotency` | `scope` (`movement`, `reserve`, `post`, `void`), `key`, `principal` (absent for a key stored before layout 4, which answers every principal), `payload_hex` (the canonical payload the key was first used with, compared on retries; see `store::codec`), `outcome` (`{"movement": {sequence, recorded_at, shipment_id}}` or `{"reservation": {reservation_id}}`) | any |
//! | `record` | `collection` (`jobs`, `plan_history`, `plan_changes`, ...), `key`, `value` (text) or `value_hex` | any |
//! | `end` | `last_sequence` (the cut), `items` (lines between header and end), `checksum` | last line, once |
//!
//! `checksum` is FNV-1a (64-bit, hex) over every byte of the file before the
//! `end` line; a truncated or edited file is refused. Balances are not in the
//! file: a restore replays the log and checks it as opening a store does.
//! The records are the same serde forms the domain types use, so a field
//! added later is read with its default from an older backup; a change that
//! cannot be read that way bumps `version`, and a reader refuses versions it
//! does not know.

use crate::domain::ledger::{LedgerEntry, Reservation};
use crate::store::{IdempotencyRecord, KeyOutcome, KeyScope, NetworkRecord, SnapshotItem};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// The `format` of a backup's header.
pub const FORMAT: &str = "spares-backup";
/// The version this build writes and the newest it reads.
pub const VERSION: u32 = 1;

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file is not a complete, undamaged backup this build can read.
    #[error("line {line}: {message}")]
    Invalid {
        /// 1-based line (0: the file as a whole).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn invalid(line: u64, message: impl Into<String>) -> BackupError {
    BackupError::Invalid {
        line,
        message: message.into(),
    }
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Header {
        format: String,
        version: u32,
        created_at: Timestamp,
        spares_version: String,
    },
    Network {
        record: NetworkRecord,
    },
    Entry {
        entry: LedgerEntry,
    },
    Reservation {
        reservation: Reservation,
    },
    Idempotency {
        scope: KeyScope,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        principal: Option<String>,
        payload_hex: String,
        outcome: KeyOutcome,
    },
    Record {
        collection: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_hex: Option<String>,
    },
    End {
        last_sequence: u64,
        items: u64,
        checksum: String,
    },
}

/// FNV-1a, 64-bit: a checksum against truncation and damage (not tampering).
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes a backup: [`BackupWriter::new`] writes the header, [`item`]
/// each snapshot item, [`finish`] the end line.
///
/// [`item`]: BackupWriter::item
/// [`finish`]: BackupWriter::finish
pub struct BackupWriter<W: Write> {
    out: W,
    checksum: Fnv,
    items: u64,
}

impl<W: Write> BackupWriter<W> {
    /// Starts a backup taken at `now`.
    pub fn new(out: W, now: Timestamp) -> Result<Self, BackupError> {
        let mut writer = Self {
            out,
            checksum: Fnv::new(),
            items: 0,
        };
        writer.line(&Line::Header {
            format: FORMAT.into(),
            version: VERSION,
            created_at: now,
            spares_version: env!("CARGO_PKG_VERSION").into(),
        })?;
        Ok(writer)
    }

    fn line(&mut self, line: &Line) -> Result<(), BackupError> {
        let mut text = serde_json::to_string(line)
            .map_err(|e| invalid(0, format!("cannot encode a record: {e}")))?;
        text.push('\n');
        self.checksum.add(text.as_bytes());
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Writes one snapshot item.
    pub fn item(&mut self, item: SnapshotItem) -> Result<(), BackupError> {
        let line = match item {
            SnapshotItem::Network(record) => Line::Network { record },
            SnapshotItem::Entry(entry) => Line::Entry { entry },
            SnapshotItem::Reservation(reservation) => Line::Reservation { reservation },
            SnapshotItem::Idempotency(k) => Line::Idempotency {
                scope: k.scope,
                key: k.key,
                principal: k.principal,
                payload_hex: hex(&k.payload),
                outcome: k.outcome,
            },
            SnapshotItem::Record {
                collection,
                key,
                value,
            } => match String::from_utf8(value) {
                Ok(text) => Line::Record {
                    collection,
                    key,
                    value: Some(text),
                    value_hex: None,
                },
                Err(bytes) => Line::Record {
                    collection,
                    key,
                    value: None,
                    value_hex: Some(hex(bytes.as_bytes())),
                },
            },
        };
        self.items += 1;
        self.line(&line)
    }

    /// Writes the end line (the cut and the checksum) and returns the output.
    pub fn finish(mut self, last_sequence: u64) -> Result<W, BackupError> {
        let end = Line::End {
            last_sequence,
            items: self.items,
            checksum: self.checksum.hex(),
        };
        let mut text = serde_json::to_string(&end)
            .map_err(|e| invalid(0, format!("cannot encode the end: {e}")))?;
        text.push('\n');
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// What a backup holds, read back.
#[derive(Debug)]
pub struct Backup {
    /// When it was taken.
    pub created_at: Timestamp,
    /// The log sequence it was cut at.
    pub last_sequence: u64,
    /// The items, in file order.
    pub items: Vec<SnapshotItem>,
}

/// Reads and checks a whole backup. Errors: a line that is not valid (with
/// its number), an unknown format or version, a missing or wrong end line
/// (truncated or damaged file).
pub fn read_backup(input: impl BufRead) -> Result<Backup, BackupError> {
    let mut checksum = Fnv::new();
    let mut items = Vec::new();
    let mut created_at = None;
    let mut end = None;
    for (index, text) in input.lines().enumerate() {
        let number = index as u64 + 1;
        let text = text?;
        if end.is_some() {
            return Err(invalid(number, "data after the end line"));
        }
        let line: Line = serde_json::from_str(&text)
            .map_err(|e| invalid(number, format!("not a backup record: {e}")))?;
        match line {
            Line::Header {
                format,
                version,
                created_at: at,
                ..
            } if number == 1 => {
                if format != FORMAT || version == 0 || version > VERSION {
                    return Err(invalid(
                        1,
                        format!(
                            "{format} version {version}; this build reads {FORMAT} 1 to {VERSION}"
                        ),
                    ));
                }
                created_at = Some(at);
            }
            _ if number == 1 => return Err(invalid(1, "the first line must be the header")),
            Line::End {
                last_sequence,
                items: count,
                checksum: expected,
            } => {
                if count != items.len() as u64 || expected != checksum.hex() {
                    return Err(invalid(
                        number,
                        "the checksum or item count does not match: the file is damaged",
                    ));
                }
                end = Some(last_sequence);
                continue;
            }
            other => items.push(to_item(other, number)?),
        }
        checksum.add(text.as_bytes());
        checksum.add(b"\n");
    }
    let created_at = created_at.ok_or_else(|| invalid(0, "empty file"))?;
    let last_sequence =
        end.ok_or_else(|| invalid(0, "no end line: the backup is incomplete (truncated?)"))?;
    Ok(Backup {
        created_at,
        last_sequence,
        items,
    })
}

fn to_item(line: Line, number: u64) -> Result<SnapshotItem, BackupError> {
    Ok(match line {
        Line::Network { record } => SnapshotItem::Network(record),
        Line::Entry { entry } => SnapshotItem::Entry(entry),
        Line::Reservation { reservation } => SnapshotItem::Reservation(reservation),
        Line::Idempotency {
            scope,
            key,
            principal,
            payload_hex,
            outcome,
        } => SnapshotItem::Idempotency(IdempotencyRecord {
            scope,
            key,
            principal,
            payload: unhex(&payload_hex).ok_or_else(|| invalid(number, "bad payload_hex"))?,
            outcome,
        }),
        Line::Record {
            collection,
            key,
            value,
            value_hex,
        } => {
            let value = match (value, value_hex) {
                (Some(text), None) => text.into_bytes(),
                (None, Some(h)) => unhex(&h).ok_or_else(|| invalid(number, "bad value_hex"))?,
                _ => return Err(invalid(number, "a record has value or value_hex")),
            };
            SnapshotItem::Record {
                collection,
                key,
                value,
            }
        }
        Line::Header { .. } => return Err(invalid(number, "a second header")),
        Line::End { .. } => return Err(invalid(number, "a second end line")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::{Account, Actor, EntryCause, Leg, MovementKind};

    fn sample() -> Vec<u8> {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut writer = BackupWriter::new(Vec::new(), now).unwrap();
        writer
            .item(SnapshotItem::Entry(LedgerEntry {
                sequence: 1,
                recorded_at: now,
                cause: EntryCause::Movement {
                    idempotency_key: "k".into(),
                    kind: MovementKind::Receipt,
                    note: String::new(),
                },
                legs: vec![
                    Leg {
                        account: Account::external(
                            "P",
                            crate::domain::ledger::ExternalParty::Supplier,
                        ),
                        delta: -2,
                    },
                    Leg {
                        account: Account::available("P", "L"),
                        delta: 2,
                    },
                ],
                shipment: None,
                actor: Actor::principal("k1", "warehouse"),
            }))
            .unwrap();
        writer
            .item(SnapshotItem::Idempotency(IdempotencyRecord {
                scope: KeyScope::Movement,
                key: "k".into(),
                principal: Some("k1".into()),
                payload: vec![0, 1, 254],
                outcome: KeyOutcome::Movement {
                    sequence: 1,
                    recorded_at: now,
                    shipment_id: None,
                },
            }))
            .unwrap();
        writer
            .item(SnapshotItem::Record {
                collection: "jobs".into(),
                key: "job-000001".into(),
                value: vec![0xff],
            })
            .unwrap();
        writer.finish(1).unwrap()
    }

    #[test]
    fn a_backup_reads_back_item_for_item() {
        let bytes = sample();
        let backup = read_backup(&bytes[..]).unwrap();
        assert_eq!(backup.last_sequence, 1);
        assert_eq!(backup.items.len(), 3);
        assert!(
            matches!(&backup.items[1], SnapshotItem::Idempotency(k) if k.payload == vec![0, 1, 254])
        );
        assert!(
            matches!(&backup.items[2], SnapshotItem::Record { value, .. } if *value == vec![0xff])
        );
    }

    #[test]
    fn truncated_or_damaged_backups_are_refused() {
        let bytes = sample();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let truncated = lines[..lines.len() - 1].join("\n");
        assert!(read_backup(truncated.as_bytes()).is_err());
        let damaged = text.replace("\"delta\":2", "\"delta\":3");
        let err = read_backup(damaged.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        let newer = text.replace("\"version\":1", "\"version\":9");
        assert!(read_backup(newer.as_bytes()).is_err());
    }
}
