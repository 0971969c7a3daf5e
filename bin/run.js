#!/usr/bin/env node
// Routing (SPEC §2): only a first word exactly `autocomplete` is the subcommand (oclif's
// plugin-autocomplete); every other command line is the one default command. That command
// first runs from the fast bundle dist/smtpdcheck.cjs, which does not load oclif; a command
// line it leaves to oclif (--help, --version, an unusual or wrong flag: see
// src/lite/oclif.ts) is then run by oclif itself, unchanged.
// This file and the bundle are CommonJS (bin/package.json) so that a run does not pay for
// node's ES module loader.
'use strict'
const {existsSync, readFileSync, writeFileSync} = require('node:fs')
const {join} = require('node:path')

const root = join(__dirname, '..')
const argv = process.argv.slice(2)

/** `smtpdcheck autocomplete [script|create] [SHELL] [--refresh-cache] [--help]`. */
async function autocomplete() {
  const [{Config, loadHelpClass}, {normalizeArgv}] = await Promise.all([import('@oclif/core'), import('@oclif/core/help')])
  const config = await Config.load(root)
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length
  if (argv.slice(0, end).includes('--help')) {
    const Help = await loadHelpClass(config)
    return new Help(config).showHelp(argv)
  }
  const [id, ...rest] = normalizeArgv(config, argv)
  await config.runCommand(id, rest)
  // The bash script lists the default command under oclif's internal id for it; make that
  // the empty word, so that `smtpdcheck --<TAB>` offers its flags and `smtpdcheck <TAB>`
  // only `autocomplete`. (zsh cannot take an empty word there: its script stays as made.)
  const script = join(config.cacheDir, 'autocomplete', 'functions', 'bash', `${config.bin}.bash`)
  const [command] = config.plugins.get(config.pjson.name).commands
  const text = existsSync(script) ? readFileSync(script, 'utf8') : ''
  if (text.includes(`\n${command.id} `)) writeFileSync(script, text.replace(`\n${command.id} `, '\n '))
}

async function run() {
  if (argv[0] === 'autocomplete') return autocomplete()
  if (await require('../dist/smtpdcheck.cjs').main(argv)) return
  const {execute} = await import('@oclif/core')
  await execute({dir: root, args: argv})
}

run().catch((error) => {
  // oclif's own errors (a bad autocomplete argument) carry `oclif.exit`: usage errors.
  const line = String(error?.message ?? error).split('\n')[0]
  process.stderr.write(`smtpdcheck: ${error?.oclif ? '' : 'system error: '}${line}\n`)
  process.exit(2)
})
