/** Hookline's version, sent in the `user-agent` of every delivery. Kept equal to package.json by a test. */
export const VERSION = "0.1.0";
