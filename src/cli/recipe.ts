// `--print-recipe NAME`: an MTA recipe as the README and the man page show it (their text
// lives in contrib/, shipped in the package; test/recipes.test.ts holds the copies equal),
// with the command filled in as this installation runs it — node's absolute path and this
// package's bin/run.js — so that it works whatever PATH the MTA gives its commands.
import {readFileSync, realpathSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {quote, UsageError} from '../core/errors.js'

interface Recipe {
  /** The file under contrib/. */
  readonly file: string
  /** Where the recipe names the command as found on PATH; replaced by `node script`. */
  readonly command?: RegExp
}

/** The recipes by name; `--print-recipe` takes one of these names (completion offers them). */
export const RECIPES = {
  exim: {file: 'exim.conf', command: /\/usr\/bin\/env PATH=\S+ \\\n(\s+)smtpdcheck(?= )/},
  'exim-serve': {file: 'exim-serve.conf'},
  postfix: {file: 'postfix-main.cf'},
  avenger: {file: 'avenger-secondary', command: /(?<=`)smtpdcheck(?= )/},
  systemd: {file: 'smtpdcheck.service', command: /(?<=^ExecStart=)smtpdcheck(?= )/m},
} as const satisfies Record<string, Recipe>

export type RecipeName = keyof typeof RECIPES

/** The installation this process runs from: node, and the real path of the script it runs. */
export function installedCommand(script = process.argv[1], node = process.execPath): {node: string; script: string; root: string} {
  const real = realpathSync(script)
  return {node, script: real, root: dirname(dirname(real))}
}

/** Recipe `name` with the command filled in; an unknown name is a UsageError listing them. */
export function recipe(name: string, {node, script, root} = installedCommand()): string {
  if (!Object.hasOwn(RECIPES, name)) throw new UsageError(`--print-recipe: unknown recipe ${quote(name)} (${Object.keys(RECIPES).join(', ')})`)
  const spec: Recipe = RECIPES[name as RecipeName]
  const text = readFileSync(join(root, 'contrib', spec.file), 'utf8')
  // A continuation line keeps its indentation: `env PATH=… \⏎    smtpdcheck` → `NODE \⏎    SCRIPT`.
  const filled = (_: string, indent: unknown) => (typeof indent === 'string' ? `${node} \\\n${indent}${script}` : `${node} ${script}`)
  return spec.command === undefined ? text : text.replace(spec.command, filled)
}
