// Build: tsc → dist/ (the oclif command, src/cli and core, type-checked), then esbuild bundles
// the fast entry src/cli/main.ts (node:util parseArgs, no oclif) and core into one CommonJS
// file, dist/smtpdcheck.cjs, which bin/run.js loads first: it saves loading oclif, whose
// Config.load and parser cost ~3× a bare node start.
import {build} from 'esbuild'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/smtpdcheck.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minifyWhitespace: true,
  logLevel: 'warning',
})
