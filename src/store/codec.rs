//! Compact binary layouts for the ledger's hot records: log batches, account
//! keys, movement payloads and idempotency records.
//!
//! These records are written for every movement, so they use hand-written,
//! fixed layouts instead of JSON: integers are little-endian, strings and byte
//! strings are a `u32` length followed by the bytes, options are a `0`/`1` tag
//! byte followed by the value, and timestamps are `i64` seconds plus `i32`
//! nanoseconds. Rarely written records (reservations, master data) stay JSON.
//! Every decoder checks lengths and tags and reports a damaged record as an
//! error instead of panicking.

use crate::domain::ledger::{
    Account, Actor, Bucket, EntryCause, ExternalParty, LedgerEntry, Leg, MovementCommand,
    MovementKind, MovementOutcome, ShipmentInfo,
};
use jiff::Timestamp;

/// The first byte of every log batch: bumped if the entry layout changes.
/// Format 2 (layout 4) appends the actor to every entry; format 1 records
/// (written before layout 4) still decode, with
/// [`Actor::unknown_before_layout_4`] as their actor. A layout-4 directory
/// holds both: its log is not rewritten by the upgrade.
const LOG_FORMAT: u8 = 2;
/// The log format written before layout 4: entries without an actor.
const LOG_FORMAT_WITHOUT_ACTOR: u8 = 1;
/// Format 3 (layout 5): the idempotency records the call wrote (a `u32`
/// count, then each stored key and encoded record as byte strings), then
/// the entries as in format 2. The log record is the only durable copy of a
/// movement call's keys (`sled_store::deferred`); they come first so that a
/// replay check reads them without decoding the entries.
const LOG_FORMAT_WITH_KEYS: u8 = 3;

/// One idempotency record as stored: (stored key, encoded record).
pub type KeyRecord = (Vec<u8>, Vec<u8>);

/// The idempotency records a log record carries, borrowed from it.
pub type KeyRecords<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Why a record could not be decoded.
pub type DecodeError = String;

/// Appends fixed-layout values to a byte buffer.
#[derive(Debug, Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn bytes(&mut self, value: &[u8]) {
        // Ids and notes are far below 4 GiB (gRPC messages are limited), so the
        // saturation never happens; a truncated length would fail to decode.
        self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        self.bytes.extend_from_slice(value);
    }

    fn str(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    fn timestamp(&mut self, value: Timestamp) {
        self.i64(value.as_second());
        self.bytes
            .extend_from_slice(&value.subsec_nanosecond().to_le_bytes());
    }

    fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads fixed-layout values from a byte slice, failing on truncation.
#[derive(Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(format!(
                "truncated: needs {len} more bytes, has {}",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|e| format!("a string is not UTF-8: {e}"))
    }

    fn timestamp(&mut self) -> Result<Timestamp, DecodeError> {
        let seconds = self.i64()?;
        let nanoseconds = i32::from_le_bytes(self.array()?);
        Timestamp::new(seconds, nanoseconds).map_err(|e| format!("bad timestamp: {e}"))
    }

    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            tag => Err(format!("bad option tag {tag}")),
        }
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.bytes.len()))
        }
    }
}

fn kind_tag(kind: MovementKind) -> u8 {
    match kind {
        MovementKind::Receipt => 0,
        MovementKind::Issue => 1,
        MovementKind::TransferShip => 2,
        MovementKind::TransferReceive => 3,
        MovementKind::Adjustment => 4,
        MovementKind::Scrap => 5,
        // Only in idempotency payloads: a count is logged as an adjustment.
        MovementKind::Count => 6,
    }
}

fn kind_from(tag: u8) -> Result<MovementKind, DecodeError> {
    Ok(match tag {
        0 => MovementKind::Receipt,
        1 => MovementKind::Issue,
        2 => MovementKind::TransferShip,
        3 => MovementKind::TransferReceive,
        4 => MovementKind::Adjustment,
        5 => MovementKind::Scrap,
        6 => MovementKind::Count,
        _ => return Err(format!("bad movement kind {tag}")),
    })
}

fn write_account(w: &mut Writer, account: &Account) {
    match account {
        Account::Internal {
            part_id,
            location_id,
            bucket,
        } => {
            w.u8(0);
            w.str(part_id);
            w.str(location_id);
            match bucket {
                Bucket::Available => w.u8(0),
                Bucket::Reserved => w.u8(1),
                Bucket::InTransit(shipment_id) => {
                    w.u8(2);
                    w.str(shipment_id);
                }
            }
        }
        Account::External { part_id, party } => {
            w.u8(1);
            w.str(part_id);
            w.u8(match party {
                ExternalParty::Supplier => 0,
                ExternalParty::Customer => 1,
                ExternalParty::Scrap => 2,
                ExternalParty::Adjustment => 3,
            });
        }
    }
}

fn read_account(r: &mut Reader<'_>) -> Result<Account, DecodeError> {
    match r.u8()? {
        0 => {
            let part_id = r.string()?;
            let location_id = r.string()?;
            let bucket = match r.u8()? {
                0 => Bucket::Available,
                1 => Bucket::Reserved,
                2 => Bucket::InTransit(r.string()?),
                tag => return Err(format!("bad bucket {tag}")),
            };
            Ok(Account::Internal {
                part_id,
                location_id,
                bucket,
            })
        }
        1 => {
            let part_id = r.string()?;
            let party = match r.u8()? {
                0 => ExternalParty::Supplier,
                1 => ExternalParty::Customer,
                2 => ExternalParty::Scrap,
                3 => ExternalParty::Adjustment,
                tag => return Err(format!("bad external party {tag}")),
            };
            Ok(Account::External { part_id, party })
        }
        tag => Err(format!("bad account tag {tag}")),
    }
}

/// The key an account's persisted balance is stored under.
pub fn account_key(account: &Account) -> Vec<u8> {
    let mut w = Writer::with_capacity(32);
    write_account(&mut w, account);
    w.finish()
}

/// Decodes a balance key written by [`account_key`].
pub fn decode_account_key(bytes: &[u8]) -> Result<Account, DecodeError> {
    let mut r = Reader::new(bytes);
    let account = read_account(&mut r)?;
    r.end()?;
    Ok(account)
}

fn write_entry(w: &mut Writer, entry: &LedgerEntry) {
    w.u64(entry.sequence);
    w.timestamp(entry.recorded_at);
    match &entry.cause {
        EntryCause::Movement {
            idempotency_key,
            kind,
            note,
        } => {
            w.u8(0);
            w.str(idempotency_key);
            w.u8(kind_tag(*kind));
            w.str(note);
        }
        EntryCause::Reserve { reservation_id } => {
            w.u8(1);
            w.str(reservation_id);
        }
        EntryCause::Post { reservation_id } => {
            w.u8(2);
            w.str(reservation_id);
        }
        EntryCause::Void { reservation_id } => {
            w.u8(3);
            w.str(reservation_id);
        }
        EntryCause::Expire { reservation_id } => {
            w.u8(4);
            w.str(reservation_id);
        }
    }
    w.u32(u32::try_from(entry.legs.len()).unwrap_or(u32::MAX));
    for leg in &entry.legs {
        write_account(w, &leg.account);
        w.i64(leg.delta);
    }
    w.option(entry.shipment.as_ref(), |w, s| {
        w.str(&s.shipment_id);
        w.str(&s.from_location_id);
        w.str(&s.to_location_id);
        w.option(s.expected_arrival, Writer::timestamp);
    });
    w.str(&entry.actor.id);
    w.str(&entry.actor.role);
}

fn read_entry(r: &mut Reader<'_>, format: u8) -> Result<LedgerEntry, DecodeError> {
    let sequence = r.u64()?;
    let recorded_at = r.timestamp()?;
    let cause = match r.u8()? {
        0 => EntryCause::Movement {
            idempotency_key: r.string()?,
            kind: kind_from(r.u8()?)?,
            note: r.string()?,
        },
        1 => EntryCause::Reserve {
            reservation_id: r.string()?,
        },
        2 => EntryCause::Post {
            reservation_id: r.string()?,
        },
        3 => EntryCause::Void {
            reservation_id: r.string()?,
        },
        4 => EntryCause::Expire {
            reservation_id: r.string()?,
        },
        tag => return Err(format!("bad entry cause {tag}")),
    };
    let legs_len = r.u32()? as usize;
    // Every leg takes at least 14 bytes, so a damaged count cannot make this
    // reserve more than the record could hold.
    let mut legs = Vec::with_capacity(legs_len.min(r.bytes.len() / 14));
    for _ in 0..legs_len {
        let account = read_account(r)?;
        legs.push(Leg {
            account,
            delta: r.i64()?,
        });
    }
    let shipment = r.option(|r| {
        Ok(ShipmentInfo {
            shipment_id: r.string()?,
            from_location_id: r.string()?,
            to_location_id: r.string()?,
            expected_arrival: r.option(Reader::timestamp)?,
        })
    })?;
    let actor = if format == LOG_FORMAT_WITHOUT_ACTOR {
        Actor::unknown_before_layout_4()
    } else {
        Actor {
            id: r.string()?,
            role: r.string()?,
        }
    };
    Ok(LedgerEntry {
        sequence,
        recorded_at,
        cause,
        legs,
        shipment,
        actor,
    })
}

/// One log record: every entry a call wrote, in sequence order. The record is
/// keyed by the first entry's sequence.
pub fn encode_log_batch(entries: &[LedgerEntry]) -> Vec<u8> {
    let mut w = Writer::with_capacity(8 + entries.len() * 96);
    w.u8(LOG_FORMAT);
    w.u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    for entry in entries {
        write_entry(&mut w, entry);
    }
    w.finish()
}

/// One log record carrying the idempotency records of the call besides its
/// entries (format 3): the sled store's movement path.
pub fn encode_log_record(entries: &[LedgerEntry], keys: &[KeyRecord]) -> Vec<u8> {
    let key_bytes: usize = keys.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
    let mut w = Writer::with_capacity(12 + entries.len() * 96 + key_bytes);
    w.u8(LOG_FORMAT_WITH_KEYS);
    w.u32(u32::try_from(keys.len()).unwrap_or(u32::MAX));
    for (key, record) in keys {
        w.bytes(key);
        w.bytes(record);
    }
    w.u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    for entry in entries {
        write_entry(&mut w, entry);
    }
    w.finish()
}

/// Decodes a record written by [`encode_log_batch`] or
/// [`encode_log_record`]: its entries (any keys it carries are skipped).
pub fn decode_log_batch(bytes: &[u8]) -> Result<Vec<LedgerEntry>, DecodeError> {
    decode_log_record(bytes).map(|(entries, _)| entries)
}

/// Decodes a log record with the idempotency records it carries, borrowed
/// from `bytes` (none for formats 1 and 2, whose keys went to the keys'
/// tree in the same write).
pub fn decode_log_record(bytes: &[u8]) -> Result<(Vec<LedgerEntry>, KeyRecords<'_>), DecodeError> {
    let mut r = Reader::new(bytes);
    let format = r.u8()?;
    if ![LOG_FORMAT, LOG_FORMAT_WITHOUT_ACTOR, LOG_FORMAT_WITH_KEYS].contains(&format) {
        return Err(format!("unknown log format {format}"));
    }
    let (keys, entry_format) = if format == LOG_FORMAT_WITH_KEYS {
        (read_keys(&mut r)?, LOG_FORMAT)
    } else {
        (Vec::new(), format)
    };
    let len = r.u32()? as usize;
    // An entry takes at least 30 bytes: bound the reservation by the record.
    let mut entries = Vec::with_capacity(len.min(bytes.len() / 30));
    for _ in 0..len {
        entries.push(read_entry(&mut r, entry_format)?);
    }
    r.end()?;
    Ok((entries, keys))
}

/// The idempotency records a log record carries, without decoding its
/// entries: a replay check's read.
pub fn log_record_keys(bytes: &[u8]) -> Result<KeyRecords<'_>, DecodeError> {
    let mut r = Reader::new(bytes);
    match r.u8()? {
        LOG_FORMAT_WITH_KEYS => read_keys(&mut r),
        LOG_FORMAT | LOG_FORMAT_WITHOUT_ACTOR => Ok(Vec::new()),
        format => Err(format!("unknown log format {format}")),
    }
}

fn read_keys<'a>(r: &mut Reader<'a>) -> Result<KeyRecords<'a>, DecodeError> {
    let count = r.u32()? as usize;
    // A key and its record take at least 8 bytes.
    let mut keys = Vec::with_capacity(count.min(r.bytes.len() / 8));
    for _ in 0..count {
        let key = r.bytes()?;
        let record = r.bytes()?;
        keys.push((key, record));
    }
    Ok(keys)
}

/// The canonical payload of a movement command, compared on idempotent
/// retries. The idempotency key is left out: it is the record's key.
pub fn movement_payload(command: &MovementCommand) -> Vec<u8> {
    let mut w = Writer::with_capacity(48 + command.note.len());
    w.u8(kind_tag(command.kind));
    w.str(&command.part_id);
    w.str(&command.location_id);
    w.i64(command.quantity);
    w.option(command.to_location_id.as_deref(), Writer::str);
    w.option(command.shipment_id.as_deref(), Writer::str);
    w.option(command.expected_arrival, Writer::timestamp);
    w.str(&command.note);
    w.finish()
}

/// What an idempotency key answered the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredOutcome {
    /// A movement: its sequence, recording time and shipment.
    Movement {
        /// Position in the log.
        sequence: u64,
        /// When it was recorded.
        recorded_at: Timestamp,
        /// The shipment, for transfers.
        shipment_id: Option<String>,
    },
    /// A reservation operation: the reservation it made or settled.
    Reservation(String),
}

impl StoredOutcome {
    /// The stored outcome of a movement.
    pub fn movement(outcome: &MovementOutcome) -> Self {
        Self::Movement {
            sequence: outcome.sequence,
            recorded_at: outcome.recorded_at,
            shipment_id: outcome.shipment_id.clone(),
        }
    }
}

/// An idempotency record: the canonical request payload and its outcome.
pub fn encode_idempotency(payload: &[u8], outcome: &StoredOutcome) -> Vec<u8> {
    let mut w = Writer::with_capacity(payload.len() + 48);
    w.bytes(payload);
    match outcome {
        StoredOutcome::Movement {
            sequence,
            recorded_at,
            shipment_id,
        } => {
            w.u8(0);
            w.u64(*sequence);
            w.timestamp(*recorded_at);
            w.option(shipment_id.as_deref(), Writer::str);
        }
        StoredOutcome::Reservation(id) => {
            w.u8(1);
            w.str(id);
        }
    }
    w.finish()
}

/// Decodes a record written by [`encode_idempotency`]: (payload, outcome).
pub fn decode_idempotency(bytes: &[u8]) -> Result<(&[u8], StoredOutcome), DecodeError> {
    let mut r = Reader::new(bytes);
    let payload = r.bytes()?;
    let outcome = match r.u8()? {
        0 => StoredOutcome::Movement {
            sequence: r.u64()?,
            recorded_at: r.timestamp()?,
            shipment_id: r.option(Reader::string)?,
        },
        1 => StoredOutcome::Reservation(r.string()?),
        tag => return Err(format!("bad outcome tag {tag}")),
    };
    r.end()?;
    Ok((payload, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanoseconds: i32) -> Timestamp {
        Timestamp::new(1_800_000_000 + seconds, nanoseconds).unwrap()
    }

    fn entries() -> Vec<LedgerEntry> {
        vec![
            LedgerEntry {
                sequence: 7,
                recorded_at: at(1, 5),
                cause: EntryCause::Movement {
                    idempotency_key: "k".into(),
                    kind: MovementKind::TransferShip,
                    note: "n\u{e9}".into(),
                },
                legs: vec![
                    Leg {
                        account: Account::available("P", "A"),
                        delta: -3,
                    },
                    Leg {
                        account: Account::in_transit("P", "B", "S1"),
                        delta: 3,
                    },
                ],
                shipment: Some(ShipmentInfo {
                    shipment_id: "S1".into(),
                    from_location_id: "A".into(),
                    to_location_id: "B".into(),
                    expected_arrival: Some(at(9, 0)),
                }),
                actor: Actor::principal("key-1", "warehouse"),
            },
            LedgerEntry {
                sequence: 8,
                recorded_at: at(2, 0),
                cause: EntryCause::Expire {
                    reservation_id: "R1".into(),
                },
                legs: vec![
                    Leg {
                        account: Account::reserved("P", "A"),
                        delta: -1,
                    },
                    Leg {
                        account: Account::external("P", ExternalParty::Customer),
                        delta: 1,
                    },
                ],
                shipment: None,
                actor: Actor::system("reservation-expiry"),
            },
        ]
    }

    #[test]
    fn log_batches_round_trip() {
        let entries = entries();
        let bytes = encode_log_batch(&entries);
        assert_eq!(decode_log_batch(&bytes).unwrap(), entries);
    }

    #[test]
    fn records_with_keys_round_trip_and_read_as_batches() {
        let entries = entries();
        let keys: Vec<KeyRecord> = vec![
            (b"M/k1".to_vec(), vec![1, 2, 3]),
            (b"M/k2".to_vec(), Vec::new()),
        ];
        let bytes = encode_log_record(&entries, &keys);
        let borrowed: Vec<(&[u8], &[u8])> = keys
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        assert_eq!(
            decode_log_record(&bytes).unwrap(),
            (entries.clone(), borrowed.clone())
        );
        assert_eq!(log_record_keys(&bytes).unwrap(), borrowed);
        assert_eq!(decode_log_batch(&bytes).unwrap(), entries);
        // Formats 1 and 2 carry no keys.
        let old = encode_log_batch(&entries);
        assert_eq!(decode_log_record(&old).unwrap(), (entries, Vec::new()));
        assert!(log_record_keys(&old).unwrap().is_empty());
        for len in 0..bytes.len() {
            assert!(decode_log_record(&bytes[..len]).is_err(), "prefix {len}");
            assert!(decode_log_batch(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(decode_log_record(&longer).is_err());
    }

    #[test]
    fn records_written_before_layout_4_decode_with_the_unknown_actor() {
        let mut entry = entries().remove(1);
        let actor_bytes = 8 + entry.actor.id.len() + entry.actor.role.len();
        let mut bytes = encode_log_batch(std::slice::from_ref(&entry));
        // A format-1 record is the same without the trailing actor.
        bytes[0] = LOG_FORMAT_WITHOUT_ACTOR;
        bytes.truncate(bytes.len() - actor_bytes);
        entry.actor = Actor::unknown_before_layout_4();
        assert_eq!(decode_log_batch(&bytes).unwrap(), vec![entry]);
        // A format-2 record cut before its actor is damaged, not old.
        let mut cut = encode_log_batch(&entries()[1..]);
        cut.truncate(cut.len() - actor_bytes);
        assert!(decode_log_batch(&cut).is_err());
    }

    #[test]
    fn damaged_log_batches_are_errors_not_panics() {
        let bytes = encode_log_batch(&entries());
        for len in 0..bytes.len() {
            assert!(decode_log_batch(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_log_batch(&longer).is_err());
        let mut wrong_format = bytes;
        wrong_format[0] = 9;
        assert!(decode_log_batch(&wrong_format).is_err());
    }

    #[test]
    fn account_keys_round_trip() {
        for account in [
            Account::available("P", "L"),
            Account::reserved("P", "L"),
            Account::in_transit("P", "L", "S"),
            Account::external("P", ExternalParty::Scrap),
        ] {
            assert_eq!(decode_account_key(&account_key(&account)).unwrap(), account);
        }
    }

    #[test]
    fn idempotency_records_round_trip_and_payloads_tell_commands_apart() {
        let command = MovementCommand {
            idempotency_key: "k".into(),
            kind: MovementKind::Receipt,
            part_id: "P".into(),
            location_id: "L".into(),
            quantity: 2,
            to_location_id: None,
            shipment_id: None,
            expected_arrival: None,
            note: String::new(),
        };
        let other = MovementCommand {
            quantity: 3,
            ..command.clone()
        };
        assert_ne!(movement_payload(&command), movement_payload(&other));
        let payload = movement_payload(&command);
        for outcome in [
            StoredOutcome::Movement {
                sequence: 4,
                recorded_at: at(0, 1),
                shipment_id: Some("S".into()),
            },
            StoredOutcome::Reservation("R".into()),
        ] {
            let bytes = encode_idempotency(&payload, &outcome);
            let (p, o) = decode_idempotency(&bytes).unwrap();
            assert_eq!((p, o), (payload.as_slice(), outcome));
        }
    }
}
