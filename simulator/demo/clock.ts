// The demo's story clock: simulated time that runs `speed` times faster than real time, but only
// towards the next moment the story waits for. When the devices take longer than the schedule
// allows (a voter at the table, an upload), the clock holds at the step's time instead of racing
// ahead, so the times printed stay those of the schedule and the cells on the chargers move by the
// story's time, not by however long the real work took. `runFree()` lets it run on (after the
// story); `jump()` lets a night pass at once. Several timelines (the polling stations) run at once
// as participants: the clock moves only while every participant waits, and only up to the
// earliest moment one of them waits for, so events happen in time order whatever the speed.

export class StoryStopped extends Error {
  constructor() {
    super("the demo is stopping");
  }
}

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface StoryClockOptions {
  /** Simulated milliseconds per real millisecond. */
  speed: number;
  /** Simulated Unix ms at the start. */
  startMs: number;
  /** Real milliseconds between ticks. Default 50. */
  tickMs?: number;
  /** Called on every tick with the simulated and the real seconds that passed. */
  onAdvance?: (simSeconds: number, realSeconds: number) => void;
}

export class StoryClock {
  private sim: number;
  private waiters: Waiter[] = [];
  private free = false;
  private timer: NodeJS.Timeout | null = null;
  private last = 0;
  private stopped = false;
  private participants = 1;

  constructor(private readonly o: StoryClockOptions) {
    this.sim = o.startMs;
  }

  get speed(): number {
    return this.o.speed;
  }

  /** Simulated Unix ms now. */
  now(): number {
    return this.sim;
  }

  start(): void {
    if (this.timer !== null) return;
    this.last = performance.now();
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? 50);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.reject(new StoryStopped());
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Resolves once the story's time has reached `target` (at once when it has already). */
  at(target: number): Promise<void> {
    if (this.stopped) return Promise.reject(new StoryStopped());
    if (target <= this.sim) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ target, resolve, reject }));
  }

  /** Waits `ms` of story time from now. */
  after(ms: number): Promise<void> {
    return this.at(this.sim + ms);
  }

  /** Real time, not story time (for waiting on things that take real time). */
  sleepReal(ms: number): Promise<void> {
    if (this.stopped) return Promise.reject(new StoryStopped());
    return new Promise((r) => setTimeout(r, ms));
  }

  /** `n` timelines run from now on; each calls leave() when it is done. */
  enter(n: number): void {
    this.participants = n;
  }

  leave(): void {
    this.participants = Math.max(1, this.participants - 1);
  }

  /** From now on time flows at `speed` without waiting for anyone. */
  runFree(): void {
    this.free = true;
  }

  /** Moves the story's time to `target` at once (a night passes); the cells follow. */
  jump(target: number): void {
    if (target <= this.sim) return;
    const s = (target - this.sim) / 1000;
    this.sim = target;
    this.o.onAdvance?.(s, 0);
    this.release();
  }

  private tick(): void {
    const t = performance.now();
    const realMs = t - this.last;
    this.last = t;
    let step = 0;
    if (this.free) step = realMs * this.o.speed;
    else if (this.waiters.length > 0 && this.waiters.length >= this.participants) {
      let horizon = Infinity;
      for (const w of this.waiters) if (w.target < horizon) horizon = w.target;
      step = Math.max(0, Math.min(realMs * this.o.speed, horizon - this.sim));
    }
    this.sim += step;
    this.o.onAdvance?.(step / 1000, realMs / 1000);
    this.release();
  }

  private release(): void {
    const due = this.waiters.filter((w) => w.target <= this.sim);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.target > this.sim);
    for (const w of due) w.resolve();
  }
}

/** "HH:MM" of a simulated Unix ms (the story's times are UTC). */
export function hhmm(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
}
