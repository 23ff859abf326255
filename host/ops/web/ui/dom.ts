// The few browser APIs the dashboard uses, typed here instead of through `lib: ["dom"]`: the repo
// compiles as one Node program, and a `/// <reference lib="dom" />` would change the global types
// (fetch streams, WebUSB) of every other file. Only this page's code sees these declarations.

export interface El {
  id: string;
  innerHTML: string;
  textContent: string | null;
  hidden: boolean;
  className: string;
  dataset: Record<string, string | undefined>;
  /** Form controls and links. */
  value: string;
  disabled: boolean;
  /** Checkboxes. */
  checked: boolean;
  href: string;
  addEventListener(type: string, listener: (event: Ev) => void): void;
  setAttribute(name: string, value: string): void;
  getAttribute(name: string): string | null;
  closest(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
  scrollIntoView(options?: { block?: string }): void;
}

export interface Ev {
  target: El;
}

export interface MessageEv {
  data: string;
}

export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEv) => void): void;
  close(): void;
}

interface BrowserGlobals {
  document: {
    getElementById(id: string): El | null;
    documentElement: { lang: string; dir: string };
    body: El;
    title: string;
    activeElement: El | null;
  };
  location: { search: string; pathname: string };
  history: { replaceState(state: null, unused: string, url: string): void };
  EventSource: new (url: string) => EventSourceLike;
}

const g = globalThis as unknown as BrowserGlobals;
export const document = g.document;
export const location = g.location;
export const history = g.history;
export function openEventSource(url: string): EventSourceLike {
  return new g.EventSource(url);
}
