// Polls a condition until it holds or the time is up; the error names what was awaited.

export async function waitFor(what: string | (() => string), cond: () => boolean, timeoutMs = 20_000, stepMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
