// Prints, as JSON on stdout, what tests/conformance/run.py needs to know about the installed
// http-cache-tests package: every test the CLI runs (built the way its cli.mjs builds the list:
// tests/index.mjs plus the surrogate-control suite) with its kind and dependencies, and the
// published results of the other caches (results/index.mjs and the JSON files it names).
// Usage: node --no-warnings suite_meta.mjs <path to node_modules/http-cache-tests>
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const pkg = path.resolve(process.argv[2])
const load = async rel => (await import(pathToFileURL(path.join(pkg, rel)).href)).default

const suites = [...await load('tests/index.mjs')]
if (fs.existsSync(path.join(pkg, 'tests/surrogate-control.mjs'))) {
  suites.push(await load('tests/surrogate-control.mjs'))
}
const tests = []
for (const suite of suites) {
  for (const test of suite.tests) {
    tests.push({
      id: test.id,
      suite: suite.id,
      name: test.name,
      kind: test.kind || 'required',
      depends_on: test.depends_on || [],
      browser_only: test.browser_only === true,
      browser_skip: test.browser_skip === true
    })
  }
}
const published = []
for (const item of await load('results/index.mjs')) {
  const results = JSON.parse(fs.readFileSync(path.join(pkg, 'results', item.file), 'utf8'))
  published.push({ name: item.name, type: item.type, version: item.version, file: item.file, results })
}
const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version
process.stdout.write(JSON.stringify({ version, tests, published }))
