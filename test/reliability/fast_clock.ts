// Device time for the reliability suite: a virtual clock that runs by itself, paced by the real
// clock `speed` times faster (1 while devices boot and take their commands, then thousands of
// times faster so that a warehouse lives through days of storage in a minute). Agents, broker and
// console keep real time; only the simulated devices and their chip models use this clock. It is
// a VirtualClock (what SimDevice takes) whose advance() is not used.
//
// Device time moves only from timer to timer, in deadline order, exactly to each deadline (as
// VirtualClock.advance does). So the device code never sees time jump while it runs, nor a timer
// fire before an earlier one: a chip's 1.5 ms wake delay is 1.5 ms for the secure element model
// and its driver alike, although the real timer behind it waited 1 ms (3.6 s of device time at
// 3,600x). Code entered from outside (bytes from the host, the harness) first calls sync(): the
// timers due by the pace run, in order, and device time moves up to the pace. Under load the device
// clock falls behind the pace instead of skipping: the effective speed drops.
//
// Every callback runs inside `guard`, which lets the harness catch a simulated power cut (the
// flash model throws PowerCut out of whatever firmware code was writing) at the point where the
// device's code was entered, as the supply would stop the MCU there.

import { VirtualClock } from "../../simulator/clock/timers.ts";

interface Entry {
  id: number;
  at: number;
  order: number;
  cb: () => void;
  cancelled: boolean;
}

/** A binary min-heap of timer entries by (at, order). */
class TimerHeap {
  private readonly a: Entry[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Entry | undefined {
    return this.a[0];
  }
  push(e: Entry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): Entry | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.a.length = 0;
  }
}

function before(x: Entry, y: Entry): boolean {
  return x.at < y.at || (x.at === y.at && x.order < y.order);
}

export class FastClock extends VirtualClock {
  private speed: number;
  private vt = 0;
  private realAnchor = performance.now();
  private virtAnchor = 0;
  private nextId = 0;
  private readonly heap = new TimerHeap();
  private readonly live = new Map<number, Entry>();
  private handle: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private inLoop = false;
  private stopped = false;

  constructor(
    speed: number,
    private readonly guard: (fn: () => void) => void,
    private readonly tickRealMs = 250,
  ) {
    super();
    this.speed = speed;
    this.arm();
  }

  override now(): number {
    return this.vt;
  }

  get currentSpeed(): number {
    return this.speed;
  }

  /** Changes the pace from now on (device time continues from where it is). */
  setSpeed(speed: number): void {
    if (!(speed > 0)) throw new RangeError(`speed must be > 0, not ${speed}`);
    this.virtAnchor = this.vt;
    this.realAnchor = performance.now();
    this.speed = speed;
    this.arm();
  }

  override schedule(cb: () => void, ms: number): number {
    const id = ++this.nextId;
    if (this.stopped) return id;
    const e: Entry = { id, at: this.vt + Math.max(0, ms), order: id, cb, cancelled: false };
    this.heap.push(e);
    this.live.set(id, e);
    if (!this.inLoop && this.realAt(e.at) < this.armedFor) this.arm();
    return id;
  }

  override cancel(id: number): void {
    const e = this.live.get(id);
    if (!e) return;
    e.cancelled = true;
    this.live.delete(id);
  }

  override advance(): void {
    throw new Error("FastClock runs by itself: advance() is not used");
  }

  /** Cancels every timer and stops (end of a scenario). */
  stop(): void {
    this.stopped = true;
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
    this.heap.clear();
    this.live.clear();
  }

  /** Device time the pace has reached. */
  private paced(): number {
    return this.virtAnchor + (performance.now() - this.realAnchor) * this.speed;
  }

  /** performance.now() at which device time `at` is due. */
  private realAt(at: number): number {
    return this.realAnchor + (at - this.virtAnchor) / this.speed;
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.handle) clearTimeout(this.handle);
    const nowReal = performance.now();
    let due = nowReal + this.tickRealMs;
    for (let e = this.heap.peek(); e !== undefined && e.cancelled; e = this.heap.peek()) this.heap.pop();
    const first = this.heap.peek();
    if (first) due = Math.min(due, this.realAt(first.at));
    this.armedFor = due;
    this.handle = setTimeout(() => this.run(true), Math.max(0, due - nowReal));
    // Device timers alone never keep the process alive.
    this.handle.unref();
  }

  /**
   * Before code from outside enters a device: the timers due by the pace run first, and device
   * time moves up to the pace. (Nothing while the clock's own timers run: time stands still there.)
   */
  sync(): void {
    if (!this.inLoop && !this.stopped) this.run(false);
  }

  /** Runs every timer due by the pace, in deadline order, moving device time to each. */
  private run(fromTimer: boolean): void {
    if (fromTimer) this.handle = null;
    if (this.stopped) return;
    const limit = this.paced();
    const first = this.heap.peek();
    if (!fromTimer && (first === undefined || first.at > limit)) {
      if (limit > this.vt) this.vt = limit;
      return;
    }
    this.inLoop = true;
    try {
      for (;;) {
        const e = this.heap.peek();
        if (e === undefined || e.at > limit) break;
        this.heap.pop();
        if (e.cancelled) continue;
        this.live.delete(e.id);
        if (e.at > this.vt) this.vt = e.at;
        this.guard(e.cb);
        if (this.stopped) return;
      }
      if (limit > this.vt) this.vt = limit;
    } finally {
      this.inLoop = false;
    }
    this.arm();
  }
}
