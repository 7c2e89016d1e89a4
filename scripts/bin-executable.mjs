// Marks the package's `bin` files (compiled by tsc, which writes them
// without the execute bit) as executable, so `npx hookline` works in a
// checkout after `npm run build`. npm does this itself for installed
// packages, but not for the project's own bin.
import { chmodSync, readFileSync } from "node:fs";

const { bin } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
for (const file of Object.values(bin)) chmodSync(new URL(`../${file}`, import.meta.url), 0o755);
