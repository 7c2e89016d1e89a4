/**
 * The console's settings: the bearer token it calls Hookline with and
 * whether the user turned on admin actions, kept in this browser's
 * localStorage for this origin.
 *
 * Admin actions (Retry) are something the user asks for, not something the
 * console guesses: Hookline has no call that says what a token may do, and
 * a read-only view should stay read-only by default. They can only be on
 * with a token; a token that may not retry still gets PERMISSION_DENIED from
 * Hookline, which the console shows.
 */

/** What the console calls Hookline with. */
export interface Settings {
  /** The bearer token; "" for none. */
  token: string;
  /** Show admin actions (Retry). Never true without a token. */
  admin: boolean;
}

const TOKEN_KEY = "hookline.console.token";
const ADMIN_KEY = "hookline.console.admin";

/** The settings stored in this browser (none: no token, read-only). */
export function loadSettings(): Settings {
  try {
    const token = localStorage.getItem(TOKEN_KEY) ?? "";
    return normalized({ token, admin: localStorage.getItem(ADMIN_KEY) === "true" });
  } catch {
    return { token: "", admin: false }; // storage disabled: nothing remembered
  }
}

/** Stores `settings` and returns them as stored. */
export function saveSettings(settings: Settings): Settings {
  const s = normalized(settings);
  try {
    if (s.token === "") localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, s.token);
    if (s.admin) localStorage.setItem(ADMIN_KEY, "true");
    else localStorage.removeItem(ADMIN_KEY);
  } catch {
    // Storage disabled: the settings hold for this page only.
  }
  return s;
}

function normalized(s: Settings): Settings {
  const token = s.token.trim();
  return { token, admin: s.admin && token !== "" };
}
