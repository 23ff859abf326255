// A wall clock kept as an offset from the monotonic timer: unset (0) until the host or a
// real-time clock sets it, then it advances with the timers. Engine subset.

import type { Timers, WallClock } from "./platform.ts";

export function createWallClock(timers: Timers): WallClock {
  let wallBase = 0;
  let setAt = 0;
  return {
    wallMs: function (): number {
      return wallBase === 0 ? 0 : wallBase + (timers.now() - setAt);
    },
    setWallMs: function (ms: number): void {
      wallBase = ms;
      setAt = timers.now();
    },
  };
}
