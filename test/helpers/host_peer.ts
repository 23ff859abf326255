// A minimal host for device tests: frames in both directions with protobufjs (the host's codec),
// collecting what the device sends.

import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";
import { Envelope } from "../../protocol/node/schema.ts";

export type Env = Record<string, Record<string, unknown> | undefined>;

export interface PeerLink {
  write(data: Uint8Array): void;
  onData(cb: (data: Uint8Array) => void): void;
}

export class HostPeer {
  readonly received: Env[] = [];
  readonly consoles: string[] = [];
  readonly errors: { code: number; detail: string }[] = [];
  readonly raw: Uint8Array[] = [];
  private readonly decoder: FrameDecoder;

  constructor(private readonly link: PeerLink) {
    this.decoder = new FrameDecoder({
      onFrame: (p) => {
        this.raw.push(p);
        const msg = Envelope.decode(p);
        this.received.push(Envelope.toObject(msg, { longs: Number, bytes: Array, defaults: false }) as Env);
      },
      onConsole: (t) => this.consoles.push(t),
      onError: (code, detail) => this.errors.push({ code, detail }),
    });
    link.onData((d) => this.decoder.pushBytes(d));
  }

  send(env: Record<string, unknown>): void {
    const err = Envelope.verify(env);
    if (err) throw new Error(`bad test envelope: ${err}`);
    this.link.write(encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish()));
  }

  /** Frames arbitrary payload bytes (not necessarily a valid Envelope). */
  sendPayload(payload: Uint8Array): void {
    this.link.write(encodeFrame(payload));
  }

  sendRaw(text: string): void {
    this.link.write(new Uint8Array(Buffer.from(text, "latin1")));
  }

  of(kind: string): Record<string, unknown>[] {
    return this.received.filter((e) => e[kind] !== undefined).map((e) => e[kind] as Record<string, unknown>);
  }

  records(): { seq: number; kind: number; payload?: number[]; signature?: number[]; timeMs?: number; prevSeq?: number }[] {
    return this.of("record") as { seq: number; kind: number }[];
  }

  clear(): void {
    this.received.length = 0;
    this.consoles.length = 0;
    this.errors.length = 0;
    this.raw.length = 0;
  }
}
