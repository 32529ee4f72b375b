// Compiles every src/**/*.wat to the same place under dist/ as .wasm (part of `npm run build`).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import initWabt from 'wabt';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wabt = await initWabt();

function* watFiles(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* watFiles(path);
    else if (e.name.endsWith('.wat')) yield path;
  }
}

for (const source of watFiles(join(root, 'src'))) {
  const module = wabt.parseWat(source, readFileSync(source, 'utf8'), { simd: true });
  try {
    module.validate();
    const out = join(root, 'dist', relative(root, source)).replace(/\.wat$/, '.wasm');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}
