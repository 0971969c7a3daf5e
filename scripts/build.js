// Build: tsc → dist/ (the oclif command and core, type-checked), then esbuild bundles the
// ordinary command and core with src/lite/oclif.ts in place of @oclif/core into one CommonJS
// file, dist/smtpdcheck.js, which bin/run.js loads first (see src/lite/oclif.ts).
import {build} from 'esbuild'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

await build({
  absWorkingDir: root,
  entryPoints: ['src/lite/main.ts'],
  outfile: 'dist/smtpdcheck.cjs',
  alias: {'@oclif/core': './src/lite/oclif.ts'},
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minifyWhitespace: true,
  logLevel: 'warning',
})
