'use strict'
/*
 * tests/node/drivers.js: real PostgreSQL drivers (node-postgres `pg` and
 * postgres.js `postgres`) driven through pgflip, with the same cases run on a
 * direct connection as the reference of what a user should see.
 *
 * tests/integration/proxy_drivers.sh starts PostgreSQL and pgflip and runs
 * this script, which prints one TAP line per case and target:
 *   ok - pg transaction: 300 KiB named Parse, then more queries
 * Targets: direct (PostgreSQL itself), session (pgflip, pool_mode=session)
 * and transaction (pgflip, pool_mode=transaction, one server connection);
 * the cases that need two server connections use transaction2.
 *
 * Every case gets its own connections and a deadline (DRV_CASE_MS, 10 s), so
 * a hang is a `not ok` line, and the connections of a case that failed are
 * destroyed before the next one starts.
 *
 * Environment: DRV_PG_PORT, DRV_DB (PostgreSQL and the test database, user
 * app / app_pw), DRV_PGFLIP_PORT, DRV_DB_SESSION, DRV_DB_TX, DRV_DB_TX2
 * (pgflip's database entries for that database), DRV_ONLY (run only the
 * cases whose line contains this text).
 */
const net = require('net')
const pg = require('pg')
const postgres = require('postgres')

const env = (k, d) => process.env[k] || d
const HOST = '127.0.0.1'
const CASE_MS = Number(env('DRV_CASE_MS', '10000'))
const ONLY = env('DRV_ONLY', '')
const direct = { host: HOST, port: Number(env('DRV_PG_PORT')), database: env('DRV_DB'), user: 'app', password: 'app_pw' }
const viaPgflip = database => ({ host: HOST, port: Number(env('DRV_PGFLIP_PORT')), database, user: 'app' })
const TARGETS = {
  direct,
  session: viaPgflip(env('DRV_DB_SESSION', 'drv_session')),
  transaction: viaPgflip(env('DRV_DB_TX', 'drv_tx')),
  transaction2: viaPgflip(env('DRV_DB_TX2', 'drv_tx2'))
}
const ALL = ['direct', 'session', 'transaction']
const POOLED = ['session', 'transaction']

/* ---- TAP and the case runner ---- */

let failures = 0
let current = null // the running case: uncaught errors fail it

function report(ok, name, err) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}`)
  if (!ok) {
    failures++
    // an assertion says what it saw; anything else also says where
    const text = err instanceof AssertError ? err.message : String(err && (err.stack || err))
    text.split('\n').slice(0, 6).forEach(l => console.log(`    # ${l}`))
  }
}

process.on('uncaughtException', e => { if (current) current.fail(e); else report(false, 'uncaught exception', e) })
process.on('unhandledRejection', e => { if (current) current.fail(e); else report(false, 'unhandled rejection', e) })

const sleep = ms => new Promise(r => setTimeout(r, ms))

/* Runs FN(ctx) with a deadline; closes what the case opened, whatever happened. */
async function runCase(name, fn) {
  if (ONLY && !name.includes(ONLY))
    return
  const ctx = { closers: [], label: name.replace(/[^a-z0-9]+/gi, '_').toLowerCase().slice(0, 40) }
  let timer, fail
  const failed = new Promise((_, reject) => { fail = reject })
  current = { fail }
  timer = setTimeout(() => fail(new Error(`timed out after ${CASE_MS} ms`)), CASE_MS)
  try {
    await Promise.race([fn(ctx), failed])
    report(true, name)
  } catch (e) {
    report(false, name, e)
  } finally {
    clearTimeout(timer)
    await Promise.all(ctx.closers.map(close => Promise.race([close().catch(() => {}), sleep(1500)])))
    current = null
  }
}

/* ---- assertions ---- */

class AssertError extends Error {}

function eq(got, want, what) {
  if (got !== want)
    throw new AssertError(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
}

function match(got, re, what) {
  if (!re.test(String(got)))
    throw new AssertError(`${what}: got ${JSON.stringify(got)}, want ${re}`)
}

/* The error P rejects with; throws if it resolves. */
async function rejects(p, what) {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new AssertError(`${what}: succeeded, want an error`)
}

const describeErr = e => `${e.code || '-'} ${e.message}`

/* ---- connections ---- */

/* A connected node-postgres client, destroyed at the end of the case. */
async function pgConnect(ctx, target, extra = {}) {
  const c = new pg.Client({ ...target, ...extra })
  c.on('error', e => { c.lastError = e }) // a lost connection is reported to the query too
  c.on('notice', () => {})
  ctx.closers.push(async () => {
    await Promise.race([c.end(), sleep(500)])
    c.connection && c.connection.stream && c.connection.stream.destroy()
  })
  await c.connect()
  return c
}

/* A postgres.js instance with one connection (so its queries pipeline on it). */
function pjs(ctx, target, extra = {}) {
  const sql = postgres({
    host: target.host, port: target.port, database: target.database, username: target.user,
    password: target.password, max: 1, idle_timeout: 0, connect_timeout: 5, onnotice: () => {}, ...extra
  })
  ctx.closers.push(() => sql.end({ timeout: 1 }))
  return sql
}

/* One statement (or several) on a direct connection of its own, as app. */
async function admin(ctx, text) {
  const c = await pgConnect(ctx, direct)
  try {
    return await c.query(text)
  } finally {
    await c.end().catch(() => {})
  }
}

/* A table of its own for a case: NAME (c int) holding one row, c = 1. */
async function freshTable(ctx, suffix = '') {
  const name = `t_${ctx.label}${suffix}`.slice(0, 60)
  await admin(ctx, `DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} (c int); INSERT INTO ${name} VALUES (1)`)
  return name
}

/* pg_terminate_backend of the backend running a query that contains MARKER,
 * once it shows in pg_stat_activity; throws if it never does. */
async function terminateRunning(ctx, marker) {
  const c = await pgConnect(ctx, direct)
  for (let i = 0; i < 100; i++) {
    const r = await c.query(
      `SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity
        WHERE query LIKE '%' || $1 || '%' AND state = 'active' AND pid <> pg_backend_pid()`, [marker])
    if (r.rows.length > 0) {
      await c.end()
      return
    }
    await sleep(50)
  }
  throw new Error(`no backend runs the query marked ${marker}`)
}

/* The server backend a client's next transaction runs on (pooled modes
 * change it between transactions). */
async function pgPid(c) {
  return (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p
}

/* ---- raw protocol, for what no driver lets us do ---- */

function startupMessage(user, database) {
  const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`)
  const b = Buffer.alloc(8)
  b.writeInt32BE(8 + params.length, 0)
  b.writeInt32BE(196608, 4)
  return Buffer.concat([b, params])
}

function queryMessage(sql) {
  const text = Buffer.from(sql + '\0')
  const b = Buffer.alloc(5)
  b.write('Q', 0)
  b.writeInt32BE(4 + text.length, 1)
  return Buffer.concat([b, text])
}

/* A raw socket to TARGET: send(bytes), and messages() gives what came back,
 * parsed into {type, body}, once the peer has closed or after WAIT_MS. */
function rawConnect(ctx, target) {
  return new Promise((resolve, reject) => {
    const s = net.connect(target.port, target.host)
    let data = Buffer.alloc(0)
    let closed = false
    const waiters = []
    s.on('data', d => { data = Buffer.concat([data, d]); waiters.forEach(w => w()) })
    s.on('close', () => { closed = true; waiters.forEach(w => w()) })
    s.on('error', () => {})
    ctx.closers.push(async () => s.destroy())
    const parse = () => {
      const out = []
      for (let off = 0; off + 5 <= data.length;) {
        const len = data.readInt32BE(off + 1)
        if (off + 1 + len > data.length)
          break
        out.push({ type: String.fromCharCode(data[off]), body: data.subarray(off + 5, off + 1 + len) })
        off += 1 + len
      }
      return out
    }
    const api = {
      socket: s,
      send: b => s.write(b),
      get closed() { return closed },
      get bytes() { return data.length },
      /* resolves when PRED(messages) holds, the socket closed, or after MS */
      until: (pred, ms) => new Promise(r => {
        const check = () => { if (closed || pred(parse())) { done() } }
        const done = () => { clearTimeout(t); waiters.splice(waiters.indexOf(check), 1); r(parse()) }
        const t = setTimeout(done, ms)
        waiters.push(check)
        check()
      })
    }
    s.on('connect', () => resolve(api))
    s.on('error', reject)
  })
}

/* The fields of an ErrorResponse body: {S, V, C, M, ...}. */
function errorFields(body) {
  const f = {}
  for (let off = 0; off < body.length && body[off] !== 0;) {
    const end = body.indexOf(0, off + 1)
    f[String.fromCharCode(body[off])] = body.toString('utf8', off + 1, end)
    off = end + 1
  }
  return f
}

/* ---- the cases ---- */

const KiB = 1024
const MiB = 1024 * KiB
/* a query text of about SIZE bytes: the padding is a comment */
const paddedQuery = (head, size) => `${head} /* ${'x'.repeat(size)} */`

const cases = []
/* addCase(title, targets, {pg: fn, postgres: fn}): fn(ctx, target, targetName) */
const addCase = (title, targets, impls) => cases.push({ title, targets, impls })

addCase('300 KiB named Parse, then more queries on the connection', ALL, {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t)
    const big = paddedQuery('SELECT $1::int + 1 AS n', 300 * KiB)
    eq((await c.query({ name: 'big', text: big, values: [1] })).rows[0].n, 2, 'the big statement')
    eq((await c.query('SELECT 2 AS n')).rows[0].n, 2, 'a simple query after it')
    eq((await c.query({ name: 'big', text: big, values: [5] })).rows[0].n, 6, 'the big statement again')
    eq((await c.query({ text: 'SELECT $1::text AS v', values: ['after'] })).rows[0].v, 'after', 'an unnamed statement after it')
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    const big = paddedQuery('SELECT $1::int + 1 AS n', 300 * KiB)
    eq((await sql.unsafe(big, [1], { prepare: true }))[0].n, 2, 'the big statement')
    eq((await sql`SELECT ${'after'}::text AS v`)[0].v, 'after', 'a query after it')
    eq((await sql.unsafe(big, [5], { prepare: true }))[0].n, 6, 'the big statement again')
    eq((await sql.unsafe('SELECT 3 AS n'))[0].n, 3, 'a simple query after it')
  }
})

addCase('statement prepared again after ALTER COLUMN TYPE gets the new type', ALL, {
  pg: async (ctx, t) => {
    const tb = await freshTable(ctx)
    const c = await pgConnect(ctx, t)
    const q = `SELECT * FROM ${tb}`
    let r = await c.query({ name: 'ddl1', text: q })
    eq(r.fields[0].dataTypeID, 23, 'type before the ALTER (int4)')
    await c.query(`ALTER TABLE ${tb} ALTER COLUMN c TYPE bigint`)
    r = await c.query({ name: 'ddl2', text: q })
    eq(r.fields[0].dataTypeID, 20, 'type of the statement prepared after the ALTER (int8)')
    eq(r.rows[0].c, '1', 'its value')
    r = await c.query({ name: 'ddl2', text: q })
    eq(r.fields[0].dataTypeID, 20, 'the same statement, executed again')
  },
  postgres: async (ctx, t) => {
    const tb = await freshTable(ctx)
    const sql = pjs(ctx, t)
    let r = await sql`SELECT * FROM ${sql(tb)}`
    eq(r.columns[0].type, 23, 'type before the ALTER (int4)')
    await sql.unsafe(`ALTER TABLE ${tb} ALTER COLUMN c TYPE bigint`)
    // postgres.js meets "cached plan must not change result type" and prepares again
    r = await sql`SELECT * FROM ${sql(tb)}`
    eq(r.columns[0].type, 20, 'type after the ALTER (int8)')
    eq(r[0].c, '1', 'its value')
    r = await sql`SELECT * FROM ${sql(tb)}`
    eq(r.columns[0].type, 20, 'the same query again')
  }
})

addCase('statement prepared again after ADD COLUMN shows the new column', ALL, {
  pg: async (ctx, t) => {
    const tb = await freshTable(ctx)
    const c = await pgConnect(ctx, t)
    const q = `SELECT * FROM ${tb}`
    eq((await c.query({ name: 'add1', text: q })).fields.length, 1, 'columns before')
    await c.query(`ALTER TABLE ${tb} ADD COLUMN d text DEFAULT 'dv'`)
    const r = await c.query({ name: 'add2', text: q })
    eq(r.fields.map(f => f.name).join(','), 'c,d', 'columns of the statement prepared after the ALTER')
    eq(r.rows[0].d, 'dv', 'the new column\'s value')
  },
  postgres: async (ctx, t) => {
    const tb = await freshTable(ctx)
    const sql = pjs(ctx, t)
    eq((await sql`SELECT * FROM ${sql(tb)}`).columns.length, 1, 'columns before')
    await sql.unsafe(`ALTER TABLE ${tb} ADD COLUMN d text DEFAULT 'dv'`)
    const r = await sql`SELECT * FROM ${sql(tb)}`
    eq(r.columns.map(f => f.name).join(','), 'c,d', 'columns after the ALTER')
    eq(r[0].d, 'dv', 'the new column\'s value')
  }
})

/*
 * Transaction mode, two server connections P and Q. pgflip's statement for
 * the query text is prepared on Q before an ALTER; the client prepares the
 * text after the ALTER (on P), then its next transaction runs on Q, where
 * pgflip uses its own older statement. On a direct connection the client's
 * statement is as new as its Parse: so it must be through pgflip.
 */
async function staleOnOtherServer(ctx, t, runUnderTest) {
  const tb = await freshTable(ctx)
  const q = `SELECT c FROM ${tb}`
  const [a, b, h1, h2] = await Promise.all([0, 1, 2, 3].map(() => pgConnect(ctx, t)))
  await a.query('BEGIN') // holds one server, so that b prepares on the other one (Q)
  await b.query('BEGIN')
  await b.query({ name: 'x', text: q })
  const pidQ = await pgPid(b)
  await b.query('COMMIT')
  await a.query('COMMIT')
  await admin(ctx, `ALTER TABLE ${tb} ALTER COLUMN c TYPE bigint`)
  await h1.query('BEGIN')
  await h2.query('BEGIN')
  const [p1, p2] = [await pgPid(h1), await pgPid(h2)]
  if (p1 !== pidQ && p2 !== pidQ)
    throw new Error(`setup: neither holder is on the server of the first statement (${p1}, ${p2}, ${pidQ})`)
  const [onQ, onP] = p1 === pidQ ? [h1, h2] : [h2, h1]
  await onP.query('COMMIT') // P is the only idle server now
  await runUnderTest(q, async () => {
    // between the client's Parse (on P) and its next transaction: P busy, Q idle
    await onP.query('BEGIN')
    await onQ.query('COMMIT')
  }, pidQ)
  await onP.query('COMMIT')
  return pidQ
}

addCase('after an ALTER, a statement prepared after it works on the server where pgflip\'s copy predates it', ['transaction2'], {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t)
    await staleOnOtherServer(ctx, t, async (q, moveToQ) => {
      eq((await c.query({ name: 'x', text: q })).fields[0].dataTypeID, 20, 'prepared after the ALTER (on P)')
      await moveToQ()
      const r = await c.query({ name: 'x', text: q })
      eq(r.fields[0].dataTypeID, 20, 'executed on Q')
      eq(r.rows[0].c, '1', 'its value on Q')
    })
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    await staleOnOtherServer(ctx, t, async (q, moveToQ) => {
      eq((await sql.unsafe(q, [], { prepare: true, simple: false })).columns[0].type, 20, 'prepared after the ALTER (on P)')
      await moveToQ()
      const r = await sql.unsafe(q, [], { prepare: true, simple: false })
      eq(r.columns[0].type, 20, 'executed on Q')
      eq(r[0].c, '1', 'its value on Q')
    })
  }
})

addCase('inside a transaction, where pgflip\'s copy of a statement predates an ALTER, it works again from the next transaction', ['transaction2'], {
  pg: async (ctx, t) => {
    // no retry is invisible inside a transaction: the first use there may
    // fail, but pgflip prepares its copy again for the next one
    const c = await pgConnect(ctx, t)
    await staleOnOtherServer(ctx, t, async (q, moveToQ, pidQ) => {
      eq((await c.query({ name: 'x', text: q })).fields[0].dataTypeID, 20, 'prepared after the ALTER (on P)')
      await moveToQ()
      await c.query('BEGIN')
      eq(await pgPid(c), pidQ, 'the transaction runs on Q')
      const first = await c.query({ name: 'x', text: q }).then(() => 'ok', e => e.code)
      if (first !== 'ok' && first !== '0A000')
        throw new Error(`first use in the transaction: ${first}`)
      await c.query('ROLLBACK')
      await c.query('BEGIN')
      eq(await pgPid(c), pidQ, 'the next transaction runs on Q')
      const r = await c.query({ name: 'x', text: q })
      eq(r.fields[0].dataTypeID, 20, 'executed on Q in the next transaction')
      await c.query('COMMIT')
    })
  }
})

addCase('a statement prepared before an ALTER COLUMN TYPE is refused with 0A000, as PostgreSQL refuses it', ALL, {
  pg: async (ctx, t) => {
    // node-postgres does not prepare again by itself; pgflip must not hand
    // it rows of another type than its statement has either
    const tb = await freshTable(ctx)
    const c = await pgConnect(ctx, t)
    const q = { name: 'before', text: `SELECT * FROM ${tb}` }
    eq((await c.query(q)).fields[0].dataTypeID, 23, 'type before the ALTER (int4)')
    await c.query(`ALTER TABLE ${tb} ALTER COLUMN c TYPE bigint`)
    for (const n of ['first', 'second']) {
      const e = await rejects(c.query(q), `${n} use after the ALTER`)
      eq(e.code, '0A000', `${n} use after the ALTER (${e.message})`)
    }
    eq((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'a query after them')
  }
})

/* LISTEN cannot work with transaction pooling: refused with 0A000, however
 * it is spelt, and the connection goes on. */
const listenSpellings = [
  ['LISTEN over the extended protocol', 'LISTEN drv_chan', true],
  ['LISTEN after a comment', '/* x */ LISTEN drv_chan', false],
  ['LISTEN after another statement', 'SELECT 1; LISTEN drv_chan', false]
]
for (const [what, text, extended] of listenSpellings) {
  addCase(`${what} is refused with 0A000, the connection goes on`, ['transaction'], {
    pg: async (ctx, t) => {
      const c = await pgConnect(ctx, t)
      const e = await rejects(c.query(extended ? { text, queryMode: 'extended' } : text), text)
      eq(e.code, '0A000', `SQLSTATE of "${text}" (${e.message})`)
      eq((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'a query after it')
    },
    postgres: async (ctx, t) => {
      const sql = pjs(ctx, t)
      const e = await rejects(extended ? sql.unsafe(text, [], { simple: false }) : sql.unsafe(text), text)
      eq(e.code, '0A000', `SQLSTATE of "${text}" (${e.message})`)
      eq((await sql`SELECT 1 AS one`)[0].one, 1, 'a query after it')
    }
  })
}

addCase('LISTEN works and the NOTIFY arrives', ['direct', 'session'], {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t)
    const got = new Promise(r => c.on('notification', n => r(n.payload)))
    await c.query({ text: 'LISTEN drv_chan_pg', queryMode: 'extended' })
    await admin(ctx, "NOTIFY drv_chan_pg, 'hello'")
    eq(await got, 'hello', 'payload')
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    let resolve
    const got = new Promise(r => { resolve = r })
    await sql.listen('drv_chan_pjs', x => resolve(x))
    await admin(ctx, "NOTIFY drv_chan_pjs, 'hello'")
    eq(await got, 'hello', 'payload')
  }
})

/* A backend that goes away says why, FATAL 57P01, and its client must hear
 * that, as it would on a direct connection. */
addCase('backend terminated during a query: the client gets its FATAL 57P01', ALL, {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t)
    const marker = `fatal_${ctx.label}`
    const p = c.query(`SELECT pg_sleep(8) /* ${marker} */`)
    p.catch(() => {})
    await terminateRunning(ctx, marker)
    const e = await rejects(p, 'the query of the terminated backend')
    eq(e.code, '57P01', `SQLSTATE (${describeErr(e)})`)
    eq(e.message, 'terminating connection due to administrator command', 'message')
  }
  // no postgres.js case: on a direct connection postgres.js 3.4 fails the
  // query with CONNECTION_CLOSED, hands the FATAL to its next query as an
  // unhandled rejection, and that query never completes
})

/* The same, read off the wire (pgflip's users log in with trust). */
addCase('backend terminated during a query: its FATAL 57P01 and message on the wire', POOLED, {
  raw: async (ctx, t) => {
    const s = await rawConnect(ctx, t)
    s.send(startupMessage(t.user, t.database))
    await s.until(ms => ms.some(m => m.type === 'Z'), 5000)
    const marker = `fatal_${ctx.label}`
    s.send(queryMessage(`SELECT pg_sleep(8) /* ${marker} */`))
    await terminateRunning(ctx, marker)
    const ms = await s.until(ms => ms.some(m => m.type === 'E'), 5000)
    const err = ms.find(m => m.type === 'E')
    if (!err)
      throw new Error(`no ErrorResponse (got ${ms.map(m => m.type).join('')})`)
    const f = errorFields(err.body)
    eq(f.C, '57P01', `SQLSTATE (${f.S} ${f.C} ${f.M})`)
    eq(f.S, 'FATAL', 'severity: the session ends, as on a direct connection')
    eq(f.M, 'terminating connection due to administrator command', 'message')
  }
})

/* PostgreSQL closes silently on a client that leaves before its startup
 * packet; node-postgres, ending a client that is still connecting, would
 * meet an ErrorResponse it cannot place. */
addCase('Terminate before the StartupMessage: closed without an ErrorResponse', ALL, {
  raw: async (ctx, t) => {
    const s = await rawConnect(ctx, t)
    s.send(Buffer.from([0x58, 0, 0, 0, 4]))
    await s.until(() => false, 2000)
    eq(s.bytes, 0, 'bytes received')
    eq(s.closed, true, 'connection closed')
  }
})

addCase('Terminate, then a StartupMessage in the same write: closed without an ErrorResponse', ALL, {
  raw: async (ctx, t) => {
    const s = await rawConnect(ctx, t)
    s.send(Buffer.concat([Buffer.from([0x58, 0, 0, 0, 4]), startupMessage(t.user, t.database)]))
    await s.until(() => false, 2000)
    eq(s.bytes, 0, 'bytes received')
    eq(s.closed, true, 'connection closed')
  }
})

addCase('close before the StartupMessage: no ErrorResponse', ALL, {
  raw: async (ctx, t) => {
    const s = await rawConnect(ctx, t)
    s.socket.end() // FIN: we send nothing more, and read what comes
    await s.until(() => false, 2000)
    eq(s.bytes, 0, 'bytes received')
    eq(s.closed, true, 'connection closed')
  }
})

addCase('1 MiB text parameter (unnamed and named statement)', ALL, {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t)
    const big = 'p'.repeat(MiB)
    eq((await c.query('SELECT length($1::text) AS n', [big])).rows[0].n, MiB, 'unnamed')
    eq((await c.query({ name: 'bigp', text: 'SELECT length($1::text) AS n', values: [big] })).rows[0].n, MiB, 'named')
    eq((await c.query({ name: 'bigp', text: 'SELECT length($1::text) AS n', values: [big + 'q'] })).rows[0].n, MiB + 1, 'named again')
    eq((await c.query('SELECT $1::text AS v', [big])).rows[0].v, big, 'the parameter comes back whole')
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    const big = 'p'.repeat(MiB)
    eq((await sql`SELECT length(${big}::text) AS n`)[0].n, MiB, 'prepared')
    eq((await sql`SELECT length(${big + 'q'}::text) AS n`)[0].n, MiB + 1, 'prepared, again')
    eq((await sql.unsafe('SELECT $1::text AS v', [big], { prepare: false }))[0].v, big, 'unnamed: the parameter comes back whole')
  }
})

addCase('1 MiB statement (simple and extended protocol)', ALL, {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t)
    const big = paddedQuery('SELECT 7 AS n', MiB)
    eq((await c.query(big)).rows[0].n, 7, 'simple protocol')
    eq((await c.query({ text: big, queryMode: 'extended' })).rows[0].n, 7, 'unnamed statement')
    eq((await c.query({ name: 'bigq', text: big })).rows[0].n, 7, 'named statement')
    eq((await c.query({ name: 'bigq', text: big })).rows[0].n, 7, 'named statement again')
    eq((await c.query('SELECT 8 AS n')).rows[0].n, 8, 'a query after them')
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    const big = paddedQuery('SELECT 7 AS n', MiB)
    eq((await sql.unsafe(big))[0].n, 7, 'simple protocol')
    eq((await sql.unsafe(big, [], { simple: false, prepare: true }))[0].n, 7, 'named statement')
    eq((await sql.unsafe(big, [], { simple: false, prepare: true }))[0].n, 7, 'named statement again')
    eq((await sql`SELECT 8 AS n`)[0].n, 8, 'a query after them')
  }
})

addCase('COPY FROM STDIN of 100000 rows, then COPY TO STDOUT gives them back', ALL, {
  postgres: async (ctx, t) => {
    const tb = `t_${ctx.label}`.slice(0, 60)
    await admin(ctx, `DROP TABLE IF EXISTS ${tb}; CREATE TABLE ${tb} (a int, b text)`)
    const sql = pjs(ctx, t)
    const rows = 100000
    const w = await sql`COPY ${sql(tb)} (a, b) FROM STDIN`.writable()
    const done = new Promise((resolve, reject) => { w.on('finish', resolve); w.on('error', reject) })
    let i = 0
    const writeMore = () => {
      while (i < rows) {
        i++
        if (!w.write(`${i}\trow number ${i} of the copy test\n`))
          return w.once('drain', writeMore)
      }
      w.end()
    }
    writeMore()
    await done
    const [{ n, s }] = await sql`SELECT count(*)::int AS n, sum(a)::text AS s FROM ${sql(tb)}`
    eq(n, rows, 'rows copied in')
    eq(s, String(rows * (rows + 1) / 2), 'sum of a')
    // read in flowing mode: postgres.js 3.4 leaves its socket paused when the
    // last CopyData of a paused stream (for await) meets backpressure, and
    // its next query then waits forever, on a direct connection too
    const r = await sql`COPY ${sql(tb)} (a, b) TO STDOUT`.readable()
    let lines = 0, tail = ''
    await new Promise((resolve, reject) => {
      r.on('data', chunk => {
        const parts = (tail + chunk.toString()).split('\n')
        tail = parts.pop()
        lines += parts.length
      })
      r.on('end', resolve)
      r.on('error', reject)
    })
    eq(lines, rows, 'rows copied out')
    eq(tail, '', 'nothing after the last row')
    eq((await sql`SELECT 'after copy' AS v`)[0].v, 'after copy', 'a query after the copies')
  }
})

addCase('cursor: 1000 rows fetched 100 at a time', ALL, {
  pg: async (ctx, t) => {
    // node-postgres has no cursor of its own (pg-cursor): an SQL cursor
    const c = await pgConnect(ctx, t)
    await c.query('BEGIN')
    await c.query('DECLARE cur CURSOR FOR SELECT n FROM generate_series(1, 1000) AS n')
    let batches = 0, sum = 0
    for (;;) {
      const r = await c.query('FETCH 100 FROM cur')
      if (r.rows.length === 0)
        break
      batches++
      r.rows.forEach(row => { sum += row.n })
    }
    await c.query('COMMIT')
    eq(batches, 10, 'batches')
    eq(sum, 500500, 'sum')
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    let batches = 0, sum = 0
    for await (const rows of sql`SELECT n FROM generate_series(1, 1000) AS n`.cursor(100)) {
      batches++
      rows.forEach(row => { sum += row.n })
      if (batches === 5)
        await sleep(20) // the client is slow for a while: the portal waits
    }
    eq(batches, 10, 'batches')
    eq(sum, 500500, 'sum')
    eq((await sql`SELECT 'after' AS v`)[0].v, 'after', 'a query after the cursor')
  }
})

addCase('20 pipelined queries, one failing, come back in order', ALL, {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t, { pipeline: true })
    const ps = []
    for (let i = 0; i < 20; i++)
      ps.push(i === 10 ? c.query('SELECT 1/0') : c.query({ text: 'SELECT $1::int AS i', values: [i] }))
    const got = await Promise.allSettled(ps)
    got.forEach((g, i) => {
      if (i === 10)
        eq(g.status === 'rejected' && g.reason.code, '22012', 'the failing query')
      else
        eq(g.status === 'fulfilled' && g.value.rows[0].i, i, `query ${i}`)
    })
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    const ps = []
    for (let i = 0; i < 20; i++)
      ps.push(i === 10 ? sql`SELECT 1/0` : sql`SELECT ${i}::int AS i`)
    const got = await Promise.allSettled(ps)
    got.forEach((g, i) => {
      if (i === 10)
        eq(g.status === 'rejected' && g.reason.code, '22012', 'the failing query')
      else
        eq(g.status === 'fulfilled' && g.value[0].i, i, `query ${i}`)
    })
  }
})

addCase('cancel a pg_sleep(20): 57014 within 3 s, the connection goes on', ALL, {
  pg: async (ctx, t) => {
    const c = await pgConnect(ctx, t)
    await c.query('SELECT 1')
    const start = Date.now()
    const q = new pg.Query('SELECT pg_sleep(20)')
    const p = new Promise((resolve, reject) => q.on('end', resolve).on('error', reject))
    c.query(q)
    await sleep(300)
    new pg.Client(t).cancel(c, q)
    const e = await rejects(p, 'the cancelled query')
    eq(e.code, '57014', `SQLSTATE (${describeErr(e)})`)
    if (Date.now() - start > 3000)
      throw new Error(`cancel took ${Date.now() - start} ms`)
    eq((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'a query after the cancel')
  },
  postgres: async (ctx, t) => {
    const sql = pjs(ctx, t)
    await sql`SELECT 1`
    const start = Date.now()
    const q = sql`SELECT pg_sleep(20)`.execute()
    setTimeout(() => q.cancel(), 300)
    const e = await rejects(q, 'the cancelled query')
    eq(e.code, '57014', `SQLSTATE (${describeErr(e)})`)
    if (Date.now() - start > 3000)
      throw new Error(`cancel took ${Date.now() - start} ms`)
    eq((await sql`SELECT 1 AS one`)[0].one, 1, 'a query after the cancel')
  }
})

/* ---- main ---- */

async function main() {
  for (const c of cases)
    for (const target of c.targets)
      for (const [driver, fn] of Object.entries(c.impls))
        await runCase(`${driver} ${target}: ${c.title}`, ctx => fn(ctx, TARGETS[target], target))
  console.log(`# drivers.js: ${failures} failed`)
  process.exit(failures ? 1 : 0)
}

main().catch(e => { report(false, 'drivers.js', e); process.exit(1) })
