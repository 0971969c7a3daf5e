#!/usr/bin/env node
// Routing (SPEC §2): only a first word exactly `autocomplete` is the subcommand (oclif's
// plugin-autocomplete); every other command line is the one default command. That command
// first runs from the fast bundle dist/smtpdcheck.js, which does not load oclif; a command
// line it leaves to oclif (--help, --version, an unusual or wrong flag: see
// src/lite/oclif.ts) is run by oclif itself, unchanged.
const argv = process.argv.slice(2)

if (argv[0] === 'autocomplete') {
  const [{Config}, {normalizeArgv}] = await Promise.all([import('@oclif/core'), import('@oclif/core/help')])
  const config = await Config.load(import.meta.url)
  const [id, ...rest] = normalizeArgv(config, argv)
  await config.runCommand(id, rest)
} else {
  const {main} = await import('../dist/smtpdcheck.js')
  if (!(await main(argv))) {
    const {execute} = await import('@oclif/core')
    await execute({dir: import.meta.url, args: argv})
  }
}
