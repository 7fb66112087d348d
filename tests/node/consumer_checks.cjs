// The consumers' side of petrova's artefacts, checked with the consumers' own tools in
// one node process (tests/test_consumers.py drives it): TypeScript's transpiler turns
// the generated zod module into JavaScript, zod 4 parses snapshots with it, and Ajv 2020
// with its defaults compiles JSON Schemas and validates documents with them.
//
// Reads one JSON job on stdin, writes one JSON report on stdout:
//   transpile: [[source.ts, target.js], ...]   done first (CommonJS, no type check)
//   modules:   {key: path of a transpiled module}
//   snapshots: {name: [module key, document]}  -> {name: {ok, data | issues}}, parsed
//              with that module's SnapshotSchema
//   compile:   {name: schema}                  -> {name: {ok, error, warnings}}
//   validate:  [{name, schema, data}]          -> {name: true | false}
"use strict";

const fs = require("node:fs");
const path = require("node:path");

function transpile(pairs) {
  const ts = require("typescript");
  for (const [source, target] of pairs) {
    const out = ts.transpileModule(fs.readFileSync(source, "utf8"), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: path.basename(source),
      reportDiagnostics: true,
    });
    if (out.diagnostics && out.diagnostics.length) {
      throw new Error(`${source}: ${out.diagnostics.map((d) => d.messageText).join("; ")}`);
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, out.outputText);
  }
}

function parseAll(modules, snapshots) {
  const report = {};
  for (const [name, [key, document]] of Object.entries(snapshots)) {
    const { SnapshotSchema } = require(path.resolve(modules[key]));
    const result = SnapshotSchema.safeParse(document);
    report[name] = result.success
      ? { ok: true, data: result.data }
      : { ok: false, issues: result.error.issues.map((i) => ({ path: i.path, message: i.message })) };
  }
  return report;
}

function newAjv(warnings) {
  const Ajv2020 = require("ajv/dist/2020").default;
  // Ajv's defaults, except that its warnings are collected rather than printed.
  const logger = { log() {}, warn: (...a) => warnings.push(a.join(" ")), error: (...a) => warnings.push(a.join(" ")) };
  return new Ajv2020({ logger });
}

function compileAll(schemas) {
  const report = {};
  for (const [name, schema] of Object.entries(schemas)) {
    const warnings = [];
    try {
      newAjv(warnings).compile(schema);
      report[name] = { ok: true, error: null, warnings };
    } catch (error) {
      report[name] = { ok: false, error: String(error.message), warnings };
    }
  }
  return report;
}

function validateAll(cases) {
  const compiled = new Map();
  const report = {};
  for (const { name, schema, data } of cases) {
    if (!compiled.has(schema)) compiled.set(schema, newAjv([]).compile(JSON.parse(schema)));
    report[name] = compiled.get(schema)(data);
  }
  return report;
}

const job = JSON.parse(fs.readFileSync(0, "utf8"));
const report = {};
if (job.transpile) transpile(job.transpile);
if (job.modules) report.snapshots = parseAll(job.modules, job.snapshots || {});
if (job.compile) report.compile = compileAll(job.compile);
if (job.validate) report.validate = validateAll(job.validate);
process.stdout.write(JSON.stringify(report));
