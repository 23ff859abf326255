// Sends a block of data to a device with the chunked transfer commands: begin, chunks kept in
// flight a window at a time (so a slow link stays busy), end. A chunk the device did not expect
// answers with the offset it has: the sender resumes from there (after a reconnect, too).
// Failures: TransferError (the device refused, the link keeps losing chunks, aborted) or the
// session's CommandError (no answer, connection closed, an Error envelope).

import { createHash } from "node:crypto";
import type { DeviceSession } from "./device_session.ts";

export interface TransferOptions {
  /** TransferKind from the schema (1 firmware, 2 station data, ...). */
  kind: number;
  data: Uint8Array;
  name?: string;
  /** Bytes per chunk; a frame carries at most 2048 bytes of Envelope. */
  chunkSize?: number;
  /** Chunks in flight at once. */
  window?: number;
  signature?: Uint8Array;
  timeoutMs?: number;
  onProgress?: (sent: number, total: number) => void;
  /** Stops the transfer before its next batch of chunks (the device keeps what it has). */
  signal?: AbortSignal;
  /** A technician's authority for TransferBegin, signed over the Command with this id. */
  begin?: { id: number; authority: Uint8Array };
}

export interface TransferOutcome {
  bytes: number;
  chunks: number;
  resumes: number;
  ms: number;
}

interface TransferReply {
  status?: number;
  message?: string;
  transfer?: { receivedBytes?: number; complete?: boolean };
}

export const MAX_CHUNK = 1800;

/** "refused": the device said no (status not OK); "unstable": chunks kept getting lost; "aborted": the signal. */
export type TransferFailure = "refused" | "unstable" | "aborted";

export class TransferError extends Error {
  constructor(
    readonly failure: TransferFailure,
    message: string,
  ) {
    super(message);
    this.name = "TransferError";
  }
}

export async function sendTransfer(session: DeviceSession, o: TransferOptions): Promise<TransferOutcome> {
  const chunkSize = Math.min(o.chunkSize ?? 1024, MAX_CHUNK);
  const window = Math.max(1, o.window ?? 4);
  const timeoutMs = o.timeoutMs ?? 15000;
  const total = o.data.length;
  const t0 = performance.now();
  const ask = async (body: Record<string, unknown>): Promise<TransferReply> => (await session.command(body, timeoutMs)) as TransferReply;
  const checkAbort = (): void => {
    if (o.signal?.aborted) throw new TransferError("aborted", `transfer aborted at ${confirmed} of ${total} bytes`);
  };

  let confirmed = 0;
  checkAbort();
  const begin = await ask({
    transferBegin: { kind: o.kind, totalBytes: total, name: o.name ?? "", sha256: createHash("sha256").update(o.data).digest() },
    ...(o.begin ? { id: o.begin.id, authority: o.begin.authority } : {}),
  });
  if ((begin.status ?? 0) !== 0) throw new TransferError("refused", `device refused the transfer: ${begin.message ?? "status " + begin.status}`);
  let next = begin.transfer?.receivedBytes ?? 0; // a resumed transfer starts where the device is
  confirmed = next;
  let chunks = 0;
  let resumes = 0;
  o.onProgress?.(confirmed, total);
  while (confirmed < total) {
    checkAbort();
    const batch: Promise<TransferReply>[] = [];
    for (let k = 0; k < window && next < total; k++) {
      const end = Math.min(total, next + chunkSize);
      batch.push(ask({ transferChunk: { offset: next, data: o.data.subarray(next, end) } }));
      next = end;
      chunks++;
    }
    const replies = await Promise.all(batch);
    let have = confirmed;
    let resumeAt = -1;
    for (const r of replies) {
      const got = r.transfer?.receivedBytes ?? 0;
      if ((r.status ?? 0) === 0) have = Math.max(have, got);
      else if (resumeAt < 0) resumeAt = got;
      else resumeAt = Math.min(resumeAt, got);
    }
    if (resumeAt >= 0 && resumeAt < next) {
      resumes++;
      next = Math.max(resumeAt, have);
    }
    confirmed = have;
    o.onProgress?.(confirmed, total);
    if (resumes > 50) throw new TransferError("unstable", `transfer keeps losing chunks (at ${confirmed} of ${total} bytes)`);
  }
  checkAbort();
  const end = await ask({ transferEnd: { signature: o.signature ?? new Uint8Array(0) } });
  if ((end.status ?? 0) !== 0 || end.transfer?.complete !== true) throw new TransferError("refused", `device did not accept the whole: ${end.message ?? "status " + end.status}`);
  return { bytes: total, chunks, resumes, ms: performance.now() - t0 };
}
