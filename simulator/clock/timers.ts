// Timers for simulated devices: real (wall-clock setTimeout) or virtual (a clock the test or the
// accelerated demo advances). Both can cancel everything a firmware instance scheduled, which is
// what a reboot or power cut does.

import type { Timers } from "../../device/platform/platform.ts";

export interface SimTimers extends Timers {
  /** Cancels every pending timer (the firmware lost power or rebooted). */
  cancelAll(): void;
  pending(): number;
}

/** A scheduler on a virtual clock: nothing happens until advance() is called. */
export class VirtualClock {
  private t = 0;
  private seq = 0;
  private queue: { id: number; at: number; order: number; cb: () => void }[] = [];

  now(): number {
    return this.t;
  }

  schedule(cb: () => void, ms: number): number {
    const id = ++this.seq;
    this.queue.push({ id, at: this.t + Math.max(0, ms), order: id, cb });
    return id;
  }

  cancel(id: number): void {
    const i = this.queue.findIndex((e) => e.id === id);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Runs every timer due within the next `ms`, in time order, moving the clock as it goes. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best = -1;
      for (let i = 0; i < this.queue.length; i++) {
        const e = this.queue[i];
        if (e.at > end) continue;
        if (best < 0 || e.at < this.queue[best].at || (e.at === this.queue[best].at && e.order < this.queue[best].order)) best = i;
      }
      if (best < 0) break;
      const e = this.queue.splice(best, 1)[0];
      this.t = Math.max(this.t, e.at);
      e.cb();
    }
    this.t = end;
  }

  /** Timers for one firmware instance on this clock. */
  timers(): SimTimers {
    const mine = new Set<number>();
    return {
      now: () => this.now(),
      setTimeout: (cb: () => void, ms: number): number => {
        const id = this.schedule(() => {
          mine.delete(id);
          cb();
        }, ms);
        mine.add(id);
        return id;
      },
      clearTimeout: (id: number): void => {
        mine.delete(id);
        this.cancel(id);
      },
      cancelAll: (): void => {
        for (const id of mine) this.cancel(id);
        mine.clear();
      },
      pending: () => mine.size,
    };
  }
}

/** Real timers; `now()` counts from creation (a boot), optionally sped up by `speed`. */
export function realTimers(speed = 1): SimTimers {
  const start = performance.now();
  const handles = new Map<number, NodeJS.Timeout>();
  let seq = 0;
  return {
    now: () => Math.floor((performance.now() - start) * speed),
    setTimeout(cb: () => void, ms: number): number {
      const id = ++seq;
      const h = setTimeout(() => {
        handles.delete(id);
        cb();
      }, Math.max(0, ms / speed));
      handles.set(id, h);
      return id;
    },
    clearTimeout(id: number): void {
      const h = handles.get(id);
      if (h) clearTimeout(h);
      handles.delete(id);
    },
    cancelAll(): void {
      for (const h of handles.values()) clearTimeout(h);
      handles.clear();
    },
    pending: () => handles.size,
  };
}
