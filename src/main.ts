/**
 * Entry point of `npm start`: the Hookline server process (see cli/serve.ts,
 * which `hookline serve` runs too).
 */
import { failedToStart, runServer } from "./cli/serve.js";

runServer().catch(failedToStart);
