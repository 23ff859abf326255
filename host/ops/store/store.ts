// The operations console's storage interface: what ingest writes and what the dashboard, the
// alerts and the reports read. SQLite implements it by default (sqlite_store.ts); a server
// database can implement it where one machine is outgrown. All methods are synchronous in the
// SQLite implementation; the interface returns plain values so an async store can wrap it in a
// worker or a queue later.

export type Role = "verification" | "result" | "unknown";

/** A device as provisioned: its identity key and where it serves. */
export interface RegisteredDevice {
  deviceId: string;
  /** P-256 public key, uncompressed X || Y, 64 bytes as 128 hex characters. */
  publicKeyHex: string;
  role: Role;
  governorate: string;
  office: string;
  /** Polling station (both devices of a station share it); "" for warehouse stock. */
  stationId: string;
  site: string;
}

/** A journal record that verified (or needed no signature), stored once per (device, seq). */
export interface StoredRecord {
  deviceId: string;
  seq: number;
  prevSeq: number;
  timeMs: number;
  kind: number;
  /** The Record's own protobuf bytes, as the device signed them. */
  bytes: Uint8Array;
  receivedMs: number;
  site: string;
}

export interface HealthSample {
  deviceId: string;
  receivedMs: number;
  site: string;
  /** protobufjs JSON of Health (numbers). */
  health: Record<string, number>;
}

export interface QuarantineEntry {
  receivedMs: number;
  topic: string;
  deviceId: string;
  /** unknown-device, bad-signature, malformed, missing-signature, replay-conflict, ... */
  reason: string;
  detail: string;
  payload: Uint8Array;
}

export interface DeviceState {
  deviceId: string;
  online: boolean;
  lastSeenMs: number;
  lastHealth: HealthSample | null;
  firmwareVersion: string;
  records: number;
  /** Highest seq such that every record up to it (following prev_seq) is stored. */
  chainTop: number;
}

/**
 * An election definition imported into the console (host/ops/election/election.ts): option names
 * for the results views and the close time for the result-overdue alert. One per (election,
 * station); stationId "" is a definition that applies to every station without its own.
 */
export interface StoredElection {
  electionId: string;
  stationId: string;
  /** SHA-256 (hex) of the encoded ElectionDefinition (the artifact's body). */
  sha256: string;
  /** The encoded ElectionDefinition. */
  definition: Uint8Array;
  /** The encoded SignedArtifact it came in, or null (imported from JSON). */
  artifact: Uint8Array | null;
  /** The artifact's commission signature was checked and is valid. */
  signatureChecked: boolean;
  /** SignedArtifact.version (0 for the JSON form). */
  version: number;
  importedMs: number;
  /** Where it came from (a file name), for people. */
  source: string;
}

export interface PutResult {
  inserted: number;
  duplicates: number;
}

export interface OpsStore {
  upsertDevices(devices: RegisteredDevice[]): void;
  device(deviceId: string): RegisteredDevice | null;
  devices(): RegisteredDevice[];

  /** Stores records idempotently by (device, seq); one transaction per call. */
  putRecords(records: StoredRecord[]): PutResult;
  /** An already stored (device, seq), for replay checks: its bytes, or null. */
  recordBytes(deviceId: string, seq: number): Uint8Array | null;
  records(filter: { deviceId?: string; kind?: number; sinceMs?: number; limit?: number }): StoredRecord[];
  /**
   * For each device (or each of `deviceIds`), its stored record of highest seq among these kinds.
   * Without deviceIds it reads the kinds' index (good for rare kinds); with them, each device's
   * records from the newest down (good for frequent kinds).
   */
  latestRecordPerDevice(kinds: number[], deviceIds?: Iterable<string>): StoredRecord[];
  /** One device's records of these kinds with seq > afterSeq, in seq order. */
  recordsAfter(deviceId: string, afterSeq: number, kinds: number[]): StoredRecord[];

  putHealth(samples: HealthSample[]): void;
  healthHistory(deviceId: string, sinceMs: number, limit: number): HealthSample[];

  setOnline(deviceId: string, online: boolean, atMs: number, firmwareVersion?: string): void;
  deviceStates(): DeviceState[];

  /** Stores election definitions, replacing those with the same (election, station). */
  putElections(elections: StoredElection[]): void;
  elections(): StoredElection[];

  quarantine(entries: QuarantineEntry[]): void;
  quarantined(filter: { reason?: string; limit?: number }): QuarantineEntry[];
  quarantineCounts(): Record<string, number>;

  /**
   * Optional: runs fn in one transaction (nested calls of the methods above join it). Ingest uses
   * it to commit a whole batch (records, health, quarantine, device state) at once.
   */
  transaction?<T>(fn: () => T): T;

  close(): void;
}
