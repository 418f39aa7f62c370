import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../../core/group-commit.js';

describe('GroupCommit', () => {
  let db: Database.Database;
  let group: GroupCommit;
  const rows = () => (db.prepare('SELECT v FROM t ORDER BY v').all() as { v: number }[]).map((r) => r.v);

  beforeEach(() => {
    db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE t (v INTEGER NOT NULL, p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)');
    group = new GroupCommit(db);
  });
  afterEach(() => db.close());

  it('answers the writes of one turn together, once their one transaction is committed', async () => {
    let answered = 0;
    const writes = [1, 2, 3].map((v) => group.write(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes).then((n) => (answered += n)));
    // Written, not yet committed, nobody told.
    expect(db.inTransaction).toBe(true);
    expect(answered).toBe(0);
    await Promise.all(writes);
    expect(db.inTransaction).toBe(false);
    expect(answered).toBe(3);
    expect(rows()).toEqual([1, 2, 3]);
  });

  it('takes back only the write that threw; the others of its group commit', async () => {
    const ok = group.write(() => db.prepare('INSERT INTO t (v) VALUES (1)').run());
    const bad = group.write(() => {
      db.prepare('INSERT INTO t (v) VALUES (2)').run();
      db.prepare('INSERT INTO t (v) VALUES (NULL)').run();
    });
    await expect(bad).rejects.toThrow(/NOT NULL/);
    await ok;
    expect(rows()).toEqual([1]);
  });

  it('fails every write of a group whose commit fails, and keeps none of them', async () => {
    const a = group.write(() => db.prepare('INSERT INTO t (v) VALUES (1)').run());
    // A deferred foreign key is checked at COMMIT: the whole group is refused there.
    const b = group.write(() => db.prepare('INSERT INTO t (v, p) VALUES (2, 99)').run());
    await expect(a).rejects.toThrow(/FOREIGN KEY/);
    await expect(b).rejects.toThrow(/FOREIGN KEY/);
    expect(rows()).toEqual([]);
    // The next turn starts a group of its own.
    await group.write(() => db.prepare('INSERT INTO t (v) VALUES (3)').run());
    expect(rows()).toEqual([3]);
  });

  it('keeps a group open for the next turn while writes keep coming fast, and commits a lone write at the end of its turn', async () => {
    // No age limit that a loaded machine could reach between two turns: the test is about the count.
    group = new GroupCommit(db, { extendAt: 8, maxAgeMs: 60_000 });
    const insert = (v: number) => () => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes;
    let answered = 0;
    const flood = Array.from({ length: 10 }, (_, v) => group.write(insert(v)).then(() => answered++));
    await new Promise((r) => setImmediate(r));
    // Ten writes joined in that turn, at least the eight that keep it open: still open, nobody told yet.
    expect(db.inTransaction).toBe(true);
    expect(answered).toBe(0);
    const more = [group.write(insert(10))];
    await Promise.all([...flood, ...more]);
    expect(answered).toBe(10);
    expect(db.inTransaction).toBe(false);
    // At rest: one write, committed at the end of its own turn.
    const lone = group.write(insert(11));
    await new Promise((r) => setImmediate(r));
    expect(db.inTransaction).toBe(false);
    await lone;
    expect(rows()).toHaveLength(12);
  });
});
