// A simulated I2C bus (Node side): routes each transaction by 7-bit address to the chip models
// attached to it, the way the firmware sees a real bus through the platform's I2cBus interface.
//
// Conventions (shared by every chip model that attaches here):
// - A device answers `write` with true (ACK) or false (NACK) and `read` with the bytes it drives
//   or null (NACK). An address with no device, or a disconnected device, NACKs.
// - Address 0x00 is the general-call address. Nobody acknowledges it here (the bus returns false),
//   but a write to it holds SDA low for the whole address byte (and for a 0x00 data byte): at
//   100 kHz that is about 80-90 us, longer than the ATECC608's tWLO of 60 us. That is how
//   CryptoAuthLib wakes the chip over plain I2C, so the bus delivers it to every connected device
//   that implements `sdaLowPulse()`.
// - Fault injection is generic: disconnect a chip (NACK everything, as a broken solder joint
//   would), NACK the next N transactions to an address, flip a bit of the next write to an address.

import type { I2cBus } from "../../device/platform/platform.ts";

export interface SimI2cDevice {
  /** The bytes written after the address byte. false = NACK. */
  write(data: Uint8Array): boolean;
  /** Returns `length` bytes (shorter answers are padded with 0xFF by the bus), or null = NACK. */
  read(length: number): Uint8Array | null;
  /** SDA was held low long enough to wake a sleeping chip (a general-call write of 0x00). */
  sdaLowPulse?(): void;
}

export interface I2cTransaction {
  address: number;
  kind: "write" | "read";
  /** Bytes written, or bytes read (null when NACKed). */
  data: Uint8Array | null;
  length: number;
  ack: boolean;
}

export interface I2cCounters {
  writes: number;
  reads: number;
  nacks: number;
}

interface Slot {
  device: SimI2cDevice;
  connected: boolean;
  nackNext: number;
  flipNextWrite: boolean;
  counters: I2cCounters;
}

function newCounters(): I2cCounters {
  return { writes: 0, reads: 0, nacks: 0 };
}

export class SimI2cBus implements I2cBus {
  private readonly slots = new Map<number, Slot>();
  /** Totals over all addresses, the general-call address included. */
  readonly counters: I2cCounters = newCounters();
  /** Transactions to addresses with no device attached. */
  unknownAddressTransactions = 0;
  /** Optional tracer, called after every transaction. */
  onTransaction: ((t: I2cTransaction) => void) | null = null;

  attach(address: number, device: SimI2cDevice): void {
    if (!Number.isInteger(address) || address < 0x01 || address > 0x7f) {
      throw new RangeError(`I2C address must be a 7-bit address 0x01..0x7f, got ${address}`);
    }
    if (this.slots.has(address)) {
      throw new Error(`I2C address 0x${address.toString(16)} already has a device`);
    }
    this.slots.set(address, {
      device,
      connected: true,
      nackNext: 0,
      flipNextWrite: false,
      counters: newCounters(),
    });
  }

  /** Removes the device: the address NACKs from now on. */
  detach(address: number): SimI2cDevice | null {
    const slot = this.slots.get(address);
    if (!slot) return null;
    this.slots.delete(address);
    return slot.device;
  }

  /** Fault injection: a disconnected device stays attached but NACKs everything and misses wakes. */
  setConnected(address: number, connected: boolean): void {
    this.slotOf(address).connected = connected;
  }

  /** Fault injection: the next `count` transactions to `address` are NACKed. */
  nackNext(address: number, count: number): void {
    this.slotOf(address).nackNext += count;
  }

  /** Fault injection: the lowest bit of the last byte of the next write to `address` is flipped. */
  corruptNextWrite(address: number): void {
    this.slotOf(address).flipNextWrite = true;
  }

  countersFor(address: number): I2cCounters {
    const slot = this.slots.get(address);
    return slot ? { ...slot.counters } : newCounters();
  }

  attachedAddresses(): number[] {
    return [...this.slots.keys()].sort((a, b) => a - b);
  }

  write(address: number, data: Uint8Array): boolean {
    this.counters.writes++;
    const copy = new Uint8Array(data);
    if (address === 0x00) {
      // General call: no one ACKs it, but every connected device sees SDA held low.
      for (const slot of this.slots.values()) {
        if (slot.connected && slot.device.sdaLowPulse) slot.device.sdaLowPulse();
      }
      this.counters.nacks++;
      this.trace({ address, kind: "write", data: copy, length: copy.length, ack: false });
      return false;
    }
    const slot = this.slots.get(address);
    let ack = false;
    if (!slot) {
      this.unknownAddressTransactions++;
    } else {
      slot.counters.writes++;
      if (slot.connected && slot.nackNext > 0) {
        slot.nackNext--;
      } else if (slot.connected) {
        if (slot.flipNextWrite && copy.length > 0) {
          slot.flipNextWrite = false;
          copy[copy.length - 1] ^= 0x01;
        }
        ack = slot.device.write(copy);
      }
      if (!ack) slot.counters.nacks++;
    }
    if (!ack) this.counters.nacks++;
    this.trace({ address, kind: "write", data: copy, length: copy.length, ack });
    return ack;
  }

  read(address: number, length: number): Uint8Array | null {
    this.counters.reads++;
    const slot = address === 0x00 ? undefined : this.slots.get(address);
    let out: Uint8Array | null = null;
    if (!slot) {
      if (address !== 0x00) this.unknownAddressTransactions++;
    } else {
      slot.counters.reads++;
      if (slot.connected && slot.nackNext > 0) {
        slot.nackNext--;
      } else if (slot.connected) {
        const got = slot.device.read(length);
        if (got) {
          out = new Uint8Array(length).fill(0xff);
          out.set(got.subarray(0, Math.min(length, got.length)));
        }
      }
      if (!out) slot.counters.nacks++;
    }
    if (!out) this.counters.nacks++;
    this.trace({ address, kind: "read", data: out, length, ack: out !== null });
    return out;
  }

  private slotOf(address: number): Slot {
    const slot = this.slots.get(address);
    if (!slot) throw new Error(`no I2C device at 0x${address.toString(16)}`);
    return slot;
  }

  private trace(t: I2cTransaction): void {
    if (this.onTransaction) this.onTransaction(t);
  }
}
