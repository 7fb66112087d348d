// The contract test a dashboard adds beside petrova's vendored zod module (see
// docs/CONSUMERS.md in petrova). It runs as it is under node's own test runner once
// compiled; under vitest, change the first import to `from "vitest"`; under jest, delete it.
// petrova's own suite runs this very file against every release, so it cannot rot.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { INTEGRATION_IDS, SnapshotSchema, StatusRowSchema } from "./snapshot.zod";

// Where the fixtures were vendored, from the repository root (where test runners start).
const FIXTURES = join("src", "lib", "petrova", "fixtures");

function fixture(name: string): Record<string, any> {
  return JSON.parse(readFileSync(join(FIXTURES, name), "utf8"));
}

describe("petrova fleet snapshot", () => {
  it("parses the consumers' fixture, with a cell for every id on every migrated row", () => {
    const snapshot = SnapshotSchema.parse(fixture("snapshot-with-integrations.json"));
    const migrated = snapshot.rows.filter((row) => row.integrations !== undefined);
    assert.ok(migrated.length > 0, "the fixture has a migrated row");
    for (const row of migrated) {
      for (const id of snapshot.integration_ids) {
        assert.ok(row.integrations?.[id], `${row.slug} has no ${id} cell`);
      }
    }
  });

  it("parses every cell status, and keeps the rows that have not migrated", () => {
    const snapshot = SnapshotSchema.parse(fixture("snapshot-all-statuses.json"));
    const statuses = new Set(
      snapshot.rows.flatMap((row) =>
        Object.values(row.integrations ?? {}).flatMap((cell) => (cell ? [cell.status] : [])),
      ),
    );
    assert.deepEqual(
      [...statuses].sort(),
      ["degraded", "failing", "not_applicable", "ok", "pending", "stale"],
    );
    assert.ok(snapshot.rows.some((row) => row.integrations === undefined));
  });

  it("gives back exactly what it was given (what the endpoint stores)", () => {
    const document = fixture("snapshot-with-integrations.json");
    assert.deepEqual(SnapshotSchema.parse(document), document);
  });

  it("keeps an integration this module does not know yet, as a cell", () => {
    const document = fixture("snapshot-with-integrations.json");
    document.integration_ids.push("eva");
    const row = document.rows.find((r: { integrations?: object }) => r.integrations);
    row.integrations.eva = { ...row.integrations[INTEGRATION_IDS[0]], status: "pending" };
    const parsed = StatusRowSchema.parse(row);
    assert.equal(parsed.integrations?.eva?.status, "pending");
    assert.deepEqual(SnapshotSchema.parse(document), document);
  });

  it("refuses a row without its slug", () => {
    const document = fixture("snapshot-with-integrations.json");
    delete document.rows[0].slug;
    const result = SnapshotSchema.safeParse(document);
    assert.equal(result.success, false);
    assert.deepEqual(result.error?.issues[0]?.path, ["rows", 0, "slug"]);
  });
});
