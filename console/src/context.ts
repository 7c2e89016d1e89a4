/** What every view needs from the app: the client, the settings, and a way to ask for a token. */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { AdminClient } from "./rpc.js";
import type { Settings } from "./settings.js";

/** The console's shared state. */
export interface ConsoleState {
  /** A WebhookAdmin client carrying the token from Settings. */
  client: AdminClient;
  settings: Settings;
  /** Opens the Settings panel (asked by an UNAUTHENTICATED answer). */
  openSettings(): void;
}

/** Provided by App. */
export const ConsoleContext = createContext<ConsoleState | undefined>(undefined);

/** The console's shared state; only inside App. */
export function useConsole(): ConsoleState {
  const state = useContext(ConsoleContext);
  if (!state) throw new Error("useConsole outside App");
  return state;
}
