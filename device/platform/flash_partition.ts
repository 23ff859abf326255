// Splits one Flash into regions that each look like a Flash of their own (pages renumbered from
// 0), so that several power-safe logs can share a chip. Engine subset.

import type { Flash } from "./platform.ts";

/** The pages [firstPage, firstPage + pageCount) of `flash`, seen as a Flash of their own. */
export function partitionFlash(flash: Flash, firstPage: number, pageCount: number): Flash {
  if (firstPage < 0 || pageCount < 1 || firstPage + pageCount > flash.pageCount) {
    throw new Error("flash partition " + firstPage + "+" + pageCount + " outside " + flash.pageCount + " pages");
  }
  function check(page: number): number {
    if (page < 0 || page >= pageCount) throw new Error("flash partition: page " + page + " out of range");
    return firstPage + page;
  }
  return {
    pageSize: flash.pageSize,
    pageCount: pageCount,
    read: function (page: number, offset: number, length: number) {
      return flash.read(check(page), offset, length);
    },
    program: function (page: number, offset: number, data: Uint8Array) {
      flash.program(check(page), offset, data);
    },
    erase: function (page: number) {
      flash.erase(check(page));
    },
  };
}

/** How the data flash is shared out. */
export interface DataRegions {
  /** Commission-signed artifacts the device holds and the versions it has accepted. */
  artifacts: Flash;
  /** The role's own power-safe log: voted marks (verification) or ballots (result device). */
  roleLog: Flash;
  /** Staging and fallback slots for firmware application bundles. */
  firmware: Flash;
}

/** Half of the data flash for artifacts, a quarter each for the role log and firmware slots. */
export function dataRegions(flash: Flash): DataRegions {
  const n = flash.pageCount;
  if (n < 8) throw new Error("data flash needs at least 8 pages, has " + n);
  const a = n >> 1;
  const r = n >> 2;
  return {
    artifacts: partitionFlash(flash, 0, a),
    roleLog: partitionFlash(flash, a, r),
    firmware: partitionFlash(flash, a + r, n - a - r),
  };
}
