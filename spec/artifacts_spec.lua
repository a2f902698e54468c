--- db:artifacts(): the contract on every backend (memory, SQLite file,
-- SQLite :memory:, PostgreSQL; plainly and inside a coroutine), then what
-- only a backend shows: rows the sqlite3 CLI and psql read (row-level
-- security for a role without BYPASSRLS, no large objects), damaged chunks
-- raising `integrity`, the index each query uses, concurrent writers in
-- several processes, a 200 MB artifact in and out in bounded memory, and
-- the "artifacts" export section (a round trip through every backend and
-- rs-llmspell's records written by hand).
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

local q = helpers.shell_quote

local SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
local SHA_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local MiB = 1048576

--- SHA-256 hex of s, from coreutils (not from the library under test).
local function sha256(s)
  local path = helpers.tmpname(".bin")
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  local p = assert(io.popen("sha256sum " .. q(path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return (out:match("^(%x+)"))
end

--- n bytes that LZ4 cannot shrink (an LCG's high bytes).
local function noise(n, seed)
  local x, out = seed or 12345, {}
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    out[i] = string.char(x >> 16 & 255)
  end
  return table.concat(out)
end

--- Writes s to a new temporary file; returns its path.
local function temp_file(s)
  local path = helpers.tmpname(".bin")
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end

--- The error object (or message) f raised.
local function err_of(f, ...) return helpers.error_of(f, ...) end

--- Asserts that f raised a bad-argument error mentioning each text.
local function refuses(f, ...)
  local texts = { ... }
  return function(...)
    local err = err_of(f, ...)
    assert.is_string(err, "expected a bad-argument error, got " .. tostring(err))
    assert.matches("bad argument #%d+", err)
    for _, t in ipairs(texts) do assert.matches(t, err, 1, true) end
  end
end

--- Runs the sqlite3 CLI on path; its output without the final newline.
local function cli(path, sql)
  local p = assert(io.popen(("sqlite3 -batch -bail %s %s 2>&1"):format(q(path), q(sql))))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "sqlite3 failed: " .. out)
  return (out:gsub("\n$", ""))
end

local function lit(s) return "'" .. s:gsub("'", "''") .. "'" end

-- ------------------------------------------------------------- contract

local function contract(backend, it, run_name)
  describe("artifacts on " .. backend.name .. run_name, function()
    local db, a, s

    local function open(opts) return backend.open(opts, backend) end

    before_each(function()
      if backend.setup then backend:setup() end
      db = open()
      s = db:sessions()
      a = db:artifacts()
      s:create("s1")
      s:create("s2")
    end)

    after_each(function()
      if db then
        -- the store may have been closed by the test: clean through a new one
        local c = open()
        local cs = c:sessions()
        for _, id in ipairs(cs:list()) do cs:delete(id) end
        c:close()
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    it("is one object per store, printed with its kind, backend, tenant and rows", function()
      assert.equal(a, db:artifacts())
      assert.equal("llmspell.storage.Artifacts", getmetatable(a).__name)
      local text = tostring(a)
      assert.matches("^llmspell%.storage%.Artifacts %(", text)
      assert.matches(db:backend_type(), text, 1, true)
      assert.matches("tenant " .. db:tenant(), text, 1, true)
      assert.matches("0 rows", text, 1, true)
      assert.equal(0, a:count())
      a:put("s1", "x")
      a:put("s2", "x")
      assert.matches("2 rows", tostring(a), 1, true)
      assert.equal(2, a:count())
    end)

    it("keeps content under its SHA-256 in <session>:<sequence>:<hash> ids", function()
      local r = a:put("s1", "abc")
      assert.same({ artifact_id = "s1:0:" .. SHA_ABC, content_hash = SHA_ABC, size = 3,
                    deduplicated = false, sequence = 0 }, r)
      local content, info = a:get(r.artifact_id)
      assert.equal("abc", content)
      assert.equal(r.artifact_id, info.artifact_id)
      -- sequences count per session, from 0
      assert.equal(1, a:put("s1", "abd").sequence)
      assert.equal("s2:0:" .. SHA_ABC, a:put("s2", "abc").artifact_id)
      assert.equal(2, a:put("s1", "abc").sequence)
      assert.equal("s1:2:" .. SHA_ABC, a:list("s1")[3].artifact_id)
    end)

    it("stores the same content once per tenant, with a reference count", function()
      local r1 = a:put("s1", "shared")
      local r2 = a:put("s1", "shared")
      local r3 = a:put("s2", "shared")
      assert.same({ false, true, true }, { r1.deduplicated, r2.deduplicated, r3.deduplicated })
      a:put("s2", "other")
      assert.same({ artifacts = 4, unique_contents = 2, bytes = 23, stored_bytes = 11 },
                  a:stats())
      assert.same({ artifacts = 2, unique_contents = 2, bytes = 11, stored_bytes = 11 },
                  a:stats("s2"))
      assert.is_true(a:delete(r1.artifact_id))
      assert.is_false(a:delete(r1.artifact_id))
      assert.is_nil(a:get(r1.artifact_id))
      assert.is_true(a:delete(r3.artifact_id))
      assert.equal("shared", (a:get(r2.artifact_id))) -- one reference left
      assert.is_true(a:delete(r2.artifact_id))
      assert.same({ artifacts = 1, unique_contents = 1, bytes = 5, stored_bytes = 5 }, a:stats())
      -- a content whose last reference went is stored afresh
      assert.is_false(a:put("s1", "shared").deduplicated)
      -- another tenant keeps its own copy
      local other = open { tenant = "other_" .. db:tenant() }
      other:sessions():create("s1")
      assert.is_false(other:artifacts():put("s1", "shared").deduplicated)
      other:sessions():delete("s1")
      other:close()
    end)

    it("gives back empty, binary, compressible, incompressible and multi-chunk content",
       function()
      local cases = {
        { "", false }, { "\0\1\2\255\0", false }, { string.rep("text ", 13107), true },
        { noise(65536), false }, { noise(3 * MiB + 5, 7) .. string.rep("z", MiB), true },
        { string.rep("b", 10240), false }, -- 10 KiB is not "over 10 KiB"
      }
      for i, c in ipairs(cases) do
        local bytes, compressed = c[1], c[2]
        local r = a:put("s1", bytes)
        assert.equal(#bytes, r.size, "case " .. i)
        assert.equal(sha256(bytes), r.content_hash, "case " .. i)
        local got, info = a:get(r.artifact_id)
        assert.is_true(got == bytes, "case " .. i)
        assert.equal(compressed, info.is_compressed, "case " .. i)
        if compressed then
          assert.is_true(info.stored_size < #bytes, "case " .. i)
        else
          assert.equal(#bytes, info.stored_size, "case " .. i)
        end
      end
      assert.equal(SHA_EMPTY, a:list("s1")[1].content_hash)
    end)

    it("describes an artifact: what put was told, and when", function()
      local before = os.time()
      local r = a:put("s1", "print(1)", {
        name = "main.lua", type = "code", mime_type = "text/x-lua",
        metadata = { lines = 1, big = math.maxinteger, ratio = 0.5, nested = { ok = true } },
        tags = { "lua", "ключ" }, created_by = "agent-7" })
      local info = a:info(r.artifact_id)
      assert.same({ r.artifact_id, "s1", 0, r.content_hash, "main.lua", "code", "text/x-lua", 8,
                    "agent-7", 1 },
                  { info.artifact_id, info.session_id, info.sequence, info.content_hash,
                    info.name, info.type, info.mime_type, info.size, info.created_by,
                    info.version })
      assert.same({ lines = 1, big = math.maxinteger, ratio = 0.5, nested = { ok = true } },
                  info.metadata)
      assert.equal("integer", math.type(info.metadata.big))
      assert.same({ "lua", "ключ" }, info.tags)
      assert.is_nil(info.parent_artifact_id)
      assert.is_true(info.created_at >= before - 1 and info.created_at <= os.time() + 1)
      assert.equal(info.created_at, info.stored_at)
      assert.equal(info.created_at, info.updated_at)
      assert.is_false(info.is_compressed)
      local _, from_get = a:get(r.artifact_id)
      assert.same(info, from_get)
      -- the defaults
      local d = a:info(a:put("s1", "x").artifact_id)
      assert.same({ "unnamed", "binary", "application/octet-stream", {}, {} },
                  { d.name, d.type, d.mime_type, d.metadata, d.tags })
      assert.is_nil(d.created_by)
      -- what is not there
      assert.is_nil(a:info("s1:99:" .. SHA_ABC))
      assert.is_nil(a:get("s1:99:" .. SHA_ABC))
      assert.is_false(a:delete("s1:99:" .. SHA_ABC))
    end)

    it("lists a session's artifacts in sequence order, page after page", function()
      for i = 1, 300 do a:put(i % 3 == 0 and "s2" or "s1", "item " .. i, { name = "n" .. i }) end
      local list = a:list("s1")
      assert.equal(200, #list)
      for i, info in ipairs(list) do assert.equal(i - 1, info.sequence) end
      assert.equal("n1", list[1].name)
      assert.equal("n299", list[200].name)
      assert.equal(100, #a:list("s2"))
      assert.same({}, a:list("nobody"))
      -- each info as info() gives it
      assert.same(a:info(list[17].artifact_id), list[17])
    end)

    it("needs a live session, and counts in its artifact_count", function()
      local err = err_of(a.put, a, "ghost", "abc")
      assert.is_true(storage.is_error(err))
      assert.equal("not_found", err.code)
      assert.equal(db:backend_type(), err.backend)
      assert.matches("session 'ghost'", err.message, 1, true)
      assert.same({ artifacts = 0, unique_contents = 0, bytes = 0, stored_bytes = 0 }, a:stats())
      s:create("short", { ttl = 0.05 })
      helpers.sleep(0.15)
      assert.equal("not_found", err_of(a.put, a, "short", "abc").code)
      assert.equal("not_found", err_of(a.put, a, "short", string.rep("x", 2 * MiB)).code)
      assert.equal(0, a:stats().unique_contents)
      local r1 = a:put("s1", "a")
      a:put("s1", "b")
      assert.equal(2, s:get("s1").artifact_count)
      a:delete(r1.artifact_id)
      assert.equal(1, s:get("s1").artifact_count)
    end)

    it("go with their session, and so does content nothing else refers to", function()
      local mine = a:put("s1", "only in s1")
      local shared = a:put("s1", "in both")
      local kept = a:put("s2", "in both")
      assert.is_true(s:delete("s1"))
      assert.is_nil(a:get(mine.artifact_id))
      assert.is_nil(a:get(shared.artifact_id))
      assert.equal("in both", (a:get(kept.artifact_id)))
      assert.same({ artifacts = 1, unique_contents = 1, bytes = 7, stored_bytes = 7 }, a:stats())
      assert.same({}, a:list("s1"))
    end)

    it("refuse bad arguments before writing anything", function()
      local long = string.rep("n", storage.limits.max_id + 1)
      refuses(a.put, "session id: string expected, got no value")(a)
      refuses(a.put, "session id: string expected, got number")(a, 1, "x")
      refuses(a.put, "session id must be 1..")(a, long, "x")
      refuses(a.put, "session id", "bad byte")(a, "s\0", "x")
      refuses(a.put, "string content expected, got table")(a, "s1", {})
      refuses(a.put, "string content expected, got number")(a, "s1", 42)
      refuses(a.put, "unknown option 'kind'")(a, "s1", "x", { kind = "code" })
      refuses(a.put, "option 'type' must be one of code, data, image, document, binary",
              "got 'text'")(a, "s1", "x", { type = "text" })
      refuses(a.put, "option 'type': string expected")(a, "s1", "x", { type = 1 })
      refuses(a.put, "option 'name' must be 1..1024 bytes")(a, "s1", "x",
                                                             { name = string.rep("n", 1025) })
      refuses(a.put, "option 'name' must be 1..")(a, "s1", "x", { name = "" })
      refuses(a.put, "option 'mime_type'", "bad byte")(a, "s1", "x", { mime_type = "a\255" })
      refuses(a.put, "option 'created_by' must be 1..")(a, "s1", "x", { created_by = long })
      refuses(a.put, "option 'metadata': table expected, got string")(a, "s1", "x",
                                                                       { metadata = "m" })
      refuses(a.put, "metadata")(a, "s1", "x", { metadata = { f = print } })
      refuses(a.put, "option 'tags': tag 2 is a number")(a, "s1", "x", { tags = { "a", 2 } })
      refuses(a.put, "option 'tags': array of strings expected")(a, "s1", "x",
                                                                 { tags = { a = "b" } })
      refuses(a.put, "option 'tags': tag 1 must be 1..")(a, "s1", "x", { tags = { "" } })
      refuses(a.put_file, "string path expected")(a, "s1", nil)
      refuses(a.get, "artifact id: string expected")(a, nil)
      refuses(a.get, "artifact id must be 1..")(a, string.rep("i", storage.limits.max_id + 87))
      refuses(a.open, "artifact id must be 1..")(a, "")
      refuses(a.delete, "artifact id: string expected")(a, true)
      refuses(a.list, "session id: string expected")(a)
      refuses(a.stats, "session id: string expected")(a, 3)
      assert.same({ artifacts = 0, unique_contents = 0, bytes = 0, stored_bytes = 0 }, a:stats())
      assert.equal(0, s:get("s1").artifact_count)
    end)

    it("join db:transaction: a rollback undoes them with the rest", function()
      local big = noise(MiB + 17, 3)
      local col = db:create_collection("tx_vectors", { dimension = 2 })
      local ok, err = pcall(db.transaction, db, function()
        db:set("k", "v")
        col:add { id = "v1", vector = { 1, 0 } }
        s:create("s3")
        a:put("s3", "in a new session")
        a:put("s1", "small one")
        a:put("s1", big)
        error("boom")
      end)
      assert.is_false(ok)
      assert.matches("boom", tostring(err))
      assert.is_nil(db:get("k"))
      assert.is_nil(col:get("v1"))
      assert.is_nil(s:get("s3"))
      assert.same({}, a:list("s3"))
      assert.same({ artifacts = 0, unique_contents = 0, bytes = 0, stored_bytes = 0 }, a:stats())
      assert.equal(0, s:get("s1").artifact_count)
      assert.is_false(a:put("s1", big).deduplicated)
      -- and a committed one keeps them all; a failed put inside keeps the rest
      local r
      db:transaction(function()
        db:set("k", "v")
        r = a:put("s1", "small one")
        assert.equal("not_found", err_of(a.put, a, "ghost", "x").code)
        assert.is_true(a:delete(a:list("s1")[1].artifact_id))
      end)
      assert.equal("v", db:get("k"))
      assert.equal("small one", (a:get(r.artifact_id)))
      assert.same({ artifacts = 1, unique_contents = 1, bytes = 9, stored_bytes = 9 }, a:stats())
      assert.equal(1, s:get("s1").artifact_count)
      db:drop_collection("tx_vectors")
    end)

    it("put_file streams a file in, and a duplicate only counts", function()
      local bytes = noise(2 * MiB + 3, 11)
      local path = temp_file(bytes)
      local r = a:put_file("s1", path, { type = "data" })
      assert.same({ #bytes, sha256(bytes), false }, { r.size, r.content_hash, r.deduplicated })
      local got, info = a:get(r.artifact_id)
      assert.is_true(got == bytes)
      assert.equal(path:match("[^/]+$"), info.name)
      assert.equal("data", info.type)
      assert.is_true(a:put_file("s2", path, { name = "copy" }).deduplicated)
      assert.is_true(a:put("s2", bytes).deduplicated)
      assert.equal(1, a:stats().unique_contents)
      local small = temp_file("tiny file")
      assert.equal("tiny file", (a:get(a:put_file("s1", small).artifact_id)))
      local empty = temp_file("")
      assert.equal(SHA_EMPTY, a:put_file("s1", empty).content_hash)
      for _, p in ipairs { path, small, empty } do os.remove(p) end
      local err = err_of(a.put_file, a, "s1", path)
      assert.equal("not_found", err.code)
      assert.matches("cannot open", err.message, 1, true)
      local dir = helpers.tmpname(".d")
      assert(os.execute("mkdir " .. q(dir)))
      assert.equal("invalid", err_of(a.put_file, a, "s1", dir).code)
      os.remove(dir)
      assert.equal("invalid", err_of(a.put_file, a, "s1", "/dev/null").code)
      local f = temp_file("x")
      assert.equal("not_found", err_of(a.put_file, a, "ghost", f).code)
      os.remove(f)
    end)

    it("open() reads an artifact piece by piece", function()
      local bytes = noise(MiB, 5) .. string.rep("tail", 300000)
      local r = a:put("s1", bytes)
      local rd = a:open(r.artifact_id)
      assert.matches("^llmspell%.storage%.ArtifactReader %(s1:0:%x+, 0 of 2248576 bytes read%)$",
                     tostring(rd))
      assert.equal("", rd:read(0))
      local parts = { rd:read(1000), rd:read(MiB), rd:read(5) }
      parts[#parts + 1] = rd:read("a")
      assert.is_true(table.concat(parts) == bytes)
      assert.equal(1000, #parts[1])
      assert.equal(MiB, #parts[2])
      assert.is_nil(rd:read(1))
      assert.is_nil(rd:read(0))
      assert.equal("", rd:read("*a"))
      rd:close()
      rd:close()
      assert.equal("closed", err_of(rd.read, rd, 1).code)
      assert.matches("closed", tostring(rd), 1, true)
      do
        local r2 <close> = a:open(r.artifact_id)
        assert.is_true(r2:read(#bytes + 10) == bytes)
      end
      local e = a:open(a:put("s1", "").artifact_id)
      assert.is_nil(e:read(10))
      refuses(rd.read, "number of bytes or \"a\" expected")(a:open(r.artifact_id), "l")
      refuses(rd.read, "must not be negative")(a:open(r.artifact_id), -1)
      local err = err_of(a.open, a, "s1:9:" .. SHA_ABC)
      assert.equal("not_found", err.code)
    end)

    it("a reader meets content deleted under it with not_found", function()
      local r = a:put("s1", noise(3 * MiB, 9))
      local rd = a:open(r.artifact_id)
      assert.equal(10, #rd:read(10))
      assert.is_true(a:delete(r.artifact_id))
      assert.equal("not_found", err_of(rd.read, rd, 2 * MiB).code)
    end)

    it("refuse use after their store (or they) closed", function()
      local other = open()
      local oa = other:artifacts()
      other:sessions():create("s9")
      local r = oa:put("s9", "abc")
      local rd = oa:open(r.artifact_id)
      other:sessions():delete("s9")
      other:close()
      assert.equal("closed", err_of(oa.put, oa, "s9", "x").code)
      assert.equal("closed", err_of(oa.stats, oa).code)
      assert.equal("closed", err_of(rd.read, rd, 1).code)
      assert.matches("closed", tostring(oa), 1, true)
      a:close()
      assert.equal("closed", err_of(a.stats, a).code)
      local fresh = db:artifacts()
      assert.are_not.equal(a, fresh)
      assert.equal(0, fresh:stats().artifacts)
      do
        local scoped <close> = db:artifacts()
        assert.equal(fresh, scoped)
      end
      assert.equal("closed", err_of(fresh.stats, fresh).code)
    end)
  end)
end

for _, backend in ipairs(helpers.backends()) do
  for _, run in ipairs(helpers.runs(it)) do contract(backend, run.it, run.name) end
end

-- ------------------------------------------------------------ SQLite file

describe("artifacts in an SQLite file", function()
  local path, db

  before_each(function()
    path = helpers.tmpname(".db")
    db = storage.open { backend = "sqlite", path = path }
    db:sessions():create("s1")
  end)

  after_each(function()
    db:close()
    helpers.remove_db(path)
  end)

  it("are rows the sqlite3 CLI reads: content once, chunks of 1 MiB, references", function()
    local a = db:artifacts()
    local big = noise(2 * MiB + 10, 4)
    a:put("s1", big)
    a:put("s1", big)
    a:put("s1", string.rep("compress me ", 10000))
    assert.equal("2", cli(path, "SELECT count(*) FROM artifact_content"))
    assert.equal("2|3|" .. (2 * MiB + 10) .. "|0",
                 cli(path, "SELECT reference_count, chunk_count, size_bytes, is_compressed"
                           .. " FROM artifact_content WHERE content_hash = '" .. sha256(big)
                           .. "'"))
    assert.equal("0|1048576|1048576\n1|1048576|1048576\n2|10|10",
                 cli(path, "SELECT chunk_index, raw_size, length(data) FROM artifact_chunks"
                           .. " WHERE content_hash = '" .. sha256(big) .. "' ORDER BY 1"))
    assert.equal("1|120000|1",
                 cli(path, "SELECT count(*), sum(raw_size), sum(length(data) < raw_size)"
                           .. " FROM artifact_chunks WHERE content_hash = '"
                           .. sha256(string.rep("compress me ", 10000)) .. "'"))
    assert.equal("s1|0\ns1|1\ns1|2",
                 cli(path, "SELECT session_id, sequence FROM artifacts ORDER BY sequence"))
    assert.equal("3", cli(path, "SELECT artifact_count FROM sessions"))
  end)

  it("raise integrity for a chunk changed behind the library's back", function()
    local a = db:artifacts()
    local r = a:put("s1", noise(2 * MiB, 8))
    local z = a:put("s1", string.rep("lz4 block ", 5000))
    cli(path, "UPDATE artifact_chunks SET data = zeroblob(1048576) WHERE chunk_index = 1"
              .. " AND content_hash = '" .. r.content_hash .. "'")
    local err = err_of(a.get, a, r.artifact_id)
    assert.equal("integrity", err.code)
    assert.matches("does not match its SHA-256", err.message, 1, true)
    local rd = a:open(r.artifact_id)
    assert.equal(MiB, #rd:read(MiB))
    assert.equal("integrity", err_of(rd.read, rd, MiB).code)
    assert.equal("integrity", err_of(rd.read, rd, 1).code) -- and stays so
    -- a damaged LZ4 block, and a chunk longer than it claims to be
    cli(path, "UPDATE artifact_chunks SET data = x'ff00ff00ff' WHERE content_hash = '"
              .. z.content_hash .. "'")
    assert.equal("integrity", err_of(a.get, a, z.artifact_id).code)
    cli(path, "UPDATE artifact_chunks SET raw_size = 3 WHERE content_hash = '"
              .. z.content_hash .. "'")
    assert.equal("integrity", err_of(a.get, a, z.artifact_id).code)
    assert.equal("integrity", err_of(function() storage.exporter(db):to_string() end).code)
  end)

  it("list is a range of artifacts_session, chunks are read by primary key", function()
    local a = db:artifacts()
    for i = 1, 20 do a:put("s1", "x" .. i) end
    local plan = cli(path, "EXPLAIN QUERY PLAN SELECT a.artifact_id FROM artifacts a"
                           .. " LEFT JOIN artifact_content c ON c.tenant_id = a.tenant_id"
                           .. " AND c.content_hash = a.content_hash"
                           .. " WHERE a.tenant_id = 'default' AND a.session_id = 's1'"
                           .. " AND a.sequence > 3 ORDER BY a.sequence LIMIT 256")
    assert.matches("USING INDEX artifacts_session", plan, 1, true)
    assert.not_matches("TEMP B-TREE", plan, 1, true)
    -- stats(session_id), as the library words it (INDEXED BY: without
    -- statistics SQLite would walk the tenant's primary key range)
    plan = cli(path, "EXPLAIN QUERY PLAN SELECT count(*), sum(size_bytes),"
                     .. " count(DISTINCT content_hash) FROM artifacts INDEXED BY"
                     .. " artifacts_session WHERE tenant_id = 'default' AND session_id = 's1'")
    assert.matches("USING INDEX artifacts_session", plan, 1, true)
    assert.same({ 20, 20 }, { a:stats("s1").artifacts, a:stats("s1").unique_contents })
    plan = cli(path, "EXPLAIN QUERY PLAN SELECT raw_size, data FROM artifact_chunks"
                     .. " WHERE tenant_id = 'default' AND content_hash = 'h' AND chunk_index = 2")
    assert.matches("USING INDEX sqlite_autoindex_artifact_chunks_1", plan, 1, true)
  end)
end)

-- ------------------------------------------------------------ PostgreSQL

describe("artifacts in PostgreSQL", function()
  local SCHEMA = "llmspell_artspec"
  local READER = "llmspell_artspec_reader" -- NOLOGIN, no BYPASSRLS: raw SQL via SET ROLE
  local opened = {}

  local function open(tenant)
    local db = storage.open { backend = "postgres", url = helpers.pg_url(), schema = SCHEMA,
                              tenant = tenant }
    opened[#opened + 1] = db
    return db
  end

  setup(function()
    pg.psql(table.concat({
      "SET client_min_messages = warning;",
      "DROP SCHEMA IF EXISTS " .. SCHEMA .. " CASCADE;",
      "DROP ROLE IF EXISTS " .. READER .. ";",
      "CREATE ROLE " .. READER .. " NOLOGIN NOSUPERUSER NOBYPASSRLS;",
    }, "\n"))
    open("acme"):close()
    pg.psql("GRANT USAGE ON SCHEMA " .. SCHEMA .. " TO " .. READER .. ";\n"
            .. "GRANT SELECT ON " .. SCHEMA .. ".artifacts, " .. SCHEMA .. ".artifact_content, "
            .. SCHEMA .. ".artifact_chunks TO " .. READER .. ";")
  end)

  teardown(function()
    pg.psql("SET client_min_messages = warning;\nDROP SCHEMA IF EXISTS " .. SCHEMA
            .. " CASCADE;\nDROP ROLE IF EXISTS " .. READER .. ";")
  end)

  before_each(function()
    pg.psql("DELETE FROM " .. SCHEMA .. ".artifacts; DELETE FROM " .. SCHEMA
            .. ".artifact_content; DELETE FROM " .. SCHEMA .. ".sessions;")
  end)

  after_each(function()
    for _, db in ipairs(opened) do db:close() end
    opened = {}
  end)

  local function as(tenant)
    local sql = "SET ROLE " .. READER .. ";\n"
    if tenant then
      sql = sql .. "SELECT set_config('app.current_tenant_id', " .. lit(tenant) .. ", false);\n"
    end
    return sql
  end

  it("keep each tenant's rows and bytes apart for a role without BYPASSRLS", function()
    local acme, globex = open("acme"), open("globex")
    acme:sessions():create("s")
    globex:sessions():create("s")
    acme:artifacts():put("s", noise(MiB + 1, 2))
    acme:artifacts():put("s", "small")
    globex:artifacts():put("s", "small")
    local counts = "SELECT (SELECT count(*) FROM " .. SCHEMA .. ".artifacts), (SELECT count(*)"
                   .. " FROM " .. SCHEMA .. ".artifact_content), (SELECT count(*) FROM "
                   .. SCHEMA .. ".artifact_chunks);"
    assert.equal("0|0|0", pg.psql1(as(nil) .. counts))
    assert.equal("2|2|3", pg.psql1(as("acme") .. counts))
    assert.equal("1|1|1", pg.psql1(as("globex") .. counts))
    assert.equal("0", pg.psql1(as("acme") .. "SELECT count(*) FROM " .. SCHEMA
                               .. ".artifact_chunks WHERE tenant_id = 'globex';"))
    -- the bytes are ordinary rows: no large object anywhere
    assert.equal("0", pg.psql1("SELECT count(*) FROM pg_largeobject_metadata"))
    assert.equal("small", pg.psql1(as("globex") .. "SELECT convert_from(data, 'UTF8') FROM "
                                   .. SCHEMA .. ".artifact_chunks;"))
    local rls = pg.psql1("SELECT string_agg(relname || ':' || relrowsecurity"
                         .. " || relforcerowsecurity,"
                         .. " ',' ORDER BY relname) FROM pg_class WHERE relnamespace = "
                         .. lit(SCHEMA) .. "::regnamespace AND relname LIKE 'artifact%'"
                         .. " AND relkind = 'r'")
    assert.equal("artifact_chunks:truetrue,artifact_content:truetrue,artifacts:truetrue", rls)
  end)

  it("raise integrity for a chunk changed behind the library's back", function()
    local db = open("acme")
    db:sessions():create("s")
    local a = db:artifacts()
    local r = a:put("s", "stored bytes")
    pg.psql("UPDATE " .. SCHEMA .. ".artifact_chunks SET data = convert_to('altered bytes',"
            .. " 'UTF8')")
    local err = err_of(a.get, a, r.artifact_id)
    assert.equal("integrity", err.code)
    assert.equal("postgres", err.backend)
    assert.equal("integrity", err_of(function() a:open(r.artifact_id):read("a") end).code)
  end)

  it("list is a range of artifacts_session_idx, chunks come by primary key", function()
    local db = open("acme")
    db:sessions():create("s")
    for i = 1, 20 do db:artifacts():put("s", "x" .. i) end
    local plan = table.concat(pg.psql("SET enable_seqscan = off;\nEXPLAIN (COSTS OFF)"
      .. " SELECT a.artifact_id FROM " .. SCHEMA .. ".artifacts a LEFT JOIN " .. SCHEMA
      .. ".artifact_content c ON c.tenant_id = a.tenant_id AND c.content_hash = a.content_hash"
      .. " WHERE a.tenant_id = 'acme' AND a.session_id = 's' AND a.sequence > 3"
      .. " ORDER BY a.sequence LIMIT 256;"), "\n")
    assert.matches("artifacts_session_idx", plan, 1, true)
    assert.not_matches("Sort", plan, 1, true)
    plan = table.concat(pg.psql("SET enable_seqscan = off;\nEXPLAIN (COSTS OFF) SELECT data"
      .. " FROM " .. SCHEMA .. ".artifact_chunks WHERE tenant_id = 'acme' AND content_hash = 'h'"
      .. " AND chunk_index = 1;"), "\n")
    assert.matches("artifact_chunks_pkey", plan, 1, true)
  end)
end)

-- ----------------------------------------------------------- concurrency

--- Starts `procs` children putting n artifacts each into one session, all
-- at once; returns every sequence they got.
local function race(backend, target, tenant, session, procs, n)
  local go = helpers.tmpname(".go")
  local children = {}
  for i = 1, procs do
    local args = { backend, target, tenant, session, tostring(n), go }
    for k, v in ipairs(args) do args[k] = q(v) end
    children[i] = assert(io.popen(helpers.lua_command("spec/support/artifact_putter.lua "
                                                      .. table.concat(args, " ")) .. " 2>&1"))
  end
  for _, p in ipairs(children) do
    local first = p:read("l")
    if first ~= "ready" then error("child failed: " .. tostring(first) .. "\n" .. p:read("a")) end
  end
  assert(io.open(go, "w")):close()
  local seqs = {}
  for i, p in ipairs(children) do
    local rest = p:read("a")
    p:close()
    local list = rest:match("done ([%d,]+)")
    assert(list, "child " .. i .. ": " .. rest)
    for x in list:gmatch("%d+") do seqs[#seqs + 1] = tonumber(x) end
  end
  os.remove(go)
  table.sort(seqs)
  return seqs
end

--- The checks after a race of procs x n puts of two contents.
local function check_race(db, seqs, total)
  local a = db:artifacts()
  assert.equal(total, #seqs)
  for i, v in ipairs(seqs) do assert.equal(i - 1, v) end -- distinct, none lost
  assert.equal(total, db:sessions():get("race").artifact_count)
  local st = a:stats()
  assert.same({ total, 2 }, { st.artifacts, st.unique_contents })
  local list = a:list("race")
  assert.equal(total, #list)
  local refs = {}
  for _, info in ipairs(list) do refs[info.content_hash] = (refs[info.content_hash] or 0) + 1 end
  local doc = storage.json_decode(storage.exporter(db):to_string()).data.artifacts
  assert.equal(2, #doc.content)
  for _, c in ipairs(doc.content) do assert.equal(refs[c.content_hash], c.reference_count) end
  assert.is_true(a:get(list[#list].artifact_id) ~= nil)
end

describe("concurrent puts of the same content", function()
  it("from two processes on one SQLite file keep one content and every count", function()
    local path = helpers.tmpname(".db")
    local db = storage.open { backend = "sqlite", path = path }
    db:sessions():create("race")
    local n = 30
    check_race(db, race("sqlite", path, "default", "race", 2, n), 2 * n)
    db:close()
    helpers.remove_db(path)
  end)

  it("from four processes on one PostgreSQL database keep one content and every count",
     function()
    local tenant = helpers.unique_tenant("artrace")
    local db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    db:sessions():create("race")
    local n = 20
    check_race(db, race("postgres", helpers.pg_url(), tenant, "race", 4, n), 4 * n)
    db:sessions():delete("race")
    db:close()
  end)
end)

-- ---------------------------------------------------------- big content

describe("a 200 MB artifact", function()
  local file

  setup(function()
    file = helpers.tmpname(".bin")
    assert(os.execute("head -c 209715200 /dev/urandom > " .. q(file)))
  end)

  teardown(function() os.remove(file) end)

  -- Under AddressSanitizer (make asan) freed memory sits in a quarantine,
  -- so RSS says nothing about what the code holds: only the results count.
  local sanitized = (os.getenv("LD_PRELOAD") or ""):find("asan") ~= nil

  --- Runs spec/support/artifact_rss.lua; returns the peak RSS growth (MiB).
  local function round_trip(backend, target, tenant, env)
    local cmd = helpers.lua_command("spec/support/artifact_rss.lua " .. q(backend) .. " "
                                    .. q(target) .. " " .. q(tenant) .. " " .. q(file))
    local p = assert(io.popen((env or "") .. " " .. cmd .. " 2>&1"))
    local out = p:read("a")
    p:close()
    local size, kib = out:match("^ok (%d+) (%d+)")
    assert(size, "child failed: " .. out)
    assert.equal(209715200, tonumber(size))
    return tonumber(kib) / 1024
  end

  -- SQLite's page cache is the store's (cache_size, 32 MiB unless told):
  -- it fills whatever the data, so the child caps it at 8 MiB to show
  -- what put_file and the reader add.
  it("goes in and out of an SQLite file with peak RSS growth under 32 MB", function()
    local path = helpers.tmpname(".db")
    local growth = round_trip("sqlite", path, "default", "CACHE=-8192")
    helpers.remove_db(path)
    assert.is_true(sanitized or growth < 32, ("grew %.1f MiB"):format(growth))
  end)

  it("goes in and out of PostgreSQL with peak RSS growth under 32 MB", function()
    local tenant = helpers.unique_tenant("artbig")
    local growth = round_trip("postgres", helpers.pg_url(), tenant)
    local db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    db:sessions():delete("big")
    db:close()
    assert.is_true(sanitized or growth < 32, ("grew %.1f MiB"):format(growth))
  end)

  it("is held once by the memory backend (which is where it is stored)", function()
    local growth = round_trip("memory", "", "default")
    assert.is_true(sanitized or growth < 200 + 32, ("grew %.1f MiB"):format(growth))
  end)
end)

-- ------------------------------------------------------- export / import

describe("the artifacts export section", function()
  local files, opened = {}, {}

  local function open(kind, tenant)
    local db
    if kind == "memory" then
      db = storage.open { backend = "memory", tenant = tenant }
    elseif kind == "sqlite" then
      local path = helpers.tmpname(".db")
      files[#files + 1] = path
      db = storage.open { backend = "sqlite", path = path, tenant = tenant }
    else
      db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    end
    opened[#opened + 1] = db
    return db
  end

  after_each(function()
    for _, db in ipairs(opened) do
      if db:backend_type() == "postgres" then
        local s = db:sessions()
        for _, id in ipairs(s:list()) do s:delete(id) end
      end
      db:close()
    end
    for _, p in ipairs(files) do helpers.remove_db(p) end
    files, opened = {}, {}
  end)

  local function export(db) return (storage.exporter(db):to_string()) end
  local function section(doc) return storage.json_decode(doc).data.artifacts end

  local function keys(t)
    local out = {}
    for k in pairs(t) do out[#out + 1] = k end
    table.sort(out)
    return out
  end

  it("goes memory -> SQLite -> PostgreSQL and back, record for record", function()
    local tenant = helpers.unique_tenant("artx")
    local mem = open("memory", tenant)
    mem:sessions():create("s1")
    mem:sessions():create("s2")
    local a = mem:artifacts()
    local big = noise(MiB, 1) .. string.rep("squeeze", 100000)
    a:put("s1", "plain", { name = "p.txt", type = "document", mime_type = "text/plain",
                           metadata = { n = math.maxinteger, f = 1.0, list = { 1, 2 } },
                           tags = { "t1", "t2" }, created_by = "me" })
    a:put("s1", big, { type = "data" })
    a:put("s2", big)
    a:put("s2", "")
    a:put("s2", "\0binary\255")
    for i = 1, 300 do a:put("s2", "many " .. i) end -- pages of the dump
    local doc = export(mem)
    local sec = section(doc)
    assert.equal(304, #sec.content)
    assert.equal(305, #sec.artifacts)
    for i = 2, #sec.content do
      assert.is_true(sec.content[i - 1].content_hash < sec.content[i].content_hash)
    end
    for i = 2, #sec.artifacts do
      assert.is_true(sec.artifacts[i - 1].artifact_id < sec.artifacts[i].artifact_id)
    end
    local c
    for _, r in ipairs(sec.content) do if r.content_hash == sha256(big) then c = r end end
    assert.same({ "content_hash", "created_at", "data", "is_compressed", "last_accessed_at",
                  "original_size_bytes", "reference_count", "size_bytes", "storage_type",
                  "tenant_id" }, keys(c))
    assert.same({ false, #big, #big, 2, tenant, "bytea" },
                { c.is_compressed, c.size_bytes, c.original_size_bytes, c.reference_count,
                  c.tenant_id, c.storage_type })
    assert.equal("integer", math.type(c.created_at))
    local art
    for _, r in ipairs(sec.artifacts) do if r.name == "p.txt" then art = r end end
    assert.same({ "artifact_id", "artifact_type", "content_hash", "created_at", "created_by",
                  "metadata", "mime_type", "name", "sequence", "session_id", "size_bytes",
                  "stored_at", "tags", "tenant_id", "updated_at", "version" }, keys(art))
    assert.same({ "s1:0:" .. sha256("plain"), "document", "text/plain", "me", 0, "s1", 5, 1,
                  { "t1", "t2" }, tenant },
                { art.artifact_id, art.artifact_type, art.mime_type, art.created_by,
                  art.sequence, art.session_id, art.size_bytes, art.version, art.tags,
                  art.tenant_id })
    assert.equal(math.maxinteger, art.metadata.n)
    assert.equal("float", math.type(art.metadata.f))

    local sq = open("sqlite", tenant)
    local st = storage.importer(sq):from_string(doc)
    assert.same({ 305, 304 }, { st.artifacts, st.artifact_content })
    local doc2 = export(sq)
    assert.same(sec, section(doc2))
    local p = open("postgres", tenant)
    storage.importer(p):from_string(doc2)
    local doc3 = export(p)
    assert.same(sec, section(doc3))
    for _, db in ipairs { sq, p } do
      local da = db:artifacts()
      assert.is_true(da:get("s1:1:" .. sha256(big)) == big)
      assert.equal("\0binary\255", (da:get("s2:2:" .. sha256("\0binary\255"))))
      assert.is_true(da:info("s1:1:" .. sha256(big)).is_compressed)
      -- new puts count on from the imported sequences and references
      assert.equal(2, da:put("s1", big).sequence)
      assert.is_true(da:put("s1", "plain").deduplicated)
      assert.equal(4, db:sessions():get("s1").artifact_count)
    end
    -- importing again: skip keeps, error refuses, replace rewrites in place
    local st2 = storage.importer(sq):from_string(doc, { on_conflict = "skip" })
    assert.equal(305 + 304 + 2, st2.skipped) -- and the two sessions
    local err = err_of(function()
      storage.importer(sq):from_string(doc, { on_conflict = "error" })
    end)
    assert.equal("conflict", err.code)
    local st3 = storage.importer(sq):from_string(doc, { on_conflict = "replace" })
    assert.same({ 305, 304 }, { st3.artifacts, st3.artifact_content })
    -- the two artifacts put since stay, and every reference count is the
    -- number of artifacts naming the content
    local after = section(export(sq))
    assert.equal(307, #after.artifacts)
    local refs = {}
    for _, r in ipairs(after.artifacts) do
      refs[r.content_hash] = (refs[r.content_hash] or 0) + 1
    end
    for _, r in ipairs(after.content) do assert.equal(refs[r.content_hash], r.reference_count) end
    assert.equal(4, sq:sessions():get("s1").artifact_count)
  end)

  -- rs-llmspell's records, written by hand: "hello world" stored
  -- uncompressed; "compressed!" in rs's compressed form (a 4-byte
  -- little-endian size, then an LZ4 block: here one literal run); and the
  -- short form, without the fields rs may leave out (null created_by and
  -- parent_artifact_id, no tags).
  local HELLO = "hello world"
  local COMP = "compressed!"
  --- base64 of s, from coreutils.
  local function b64(s)
    local path = temp_file(s)
    local p = assert(io.popen("base64 -w0 " .. q(path)))
    local out = p:read("a")
    p:close()
    os.remove(path)
    return out
  end

  local function rs_doc(tenant, over)
    over = over or {}
    local comp = string.pack("<I4", #COMP) .. string.char(#COMP << 4) .. COMP
    local content = {
      { tenant_id = tenant, content_hash = sha256(HELLO), storage_type = "bytea",
        data = b64(HELLO), size_bytes = 11, is_compressed = false, original_size_bytes = 11,
        reference_count = 1, created_at = 1736935800000000, last_accessed_at = 1736935900000000 },
      { tenant_id = tenant, content_hash = over.hash or sha256(COMP), storage_type = "bytea",
        data = over.data or b64(comp), size_bytes = #comp, is_compressed = true,
        original_size_bytes = #COMP, reference_count = 1, created_at = 1736935800000000,
        last_accessed_at = 1736935800000000 },
    }
    local artifacts = {
      { tenant_id = tenant, artifact_id = "rs-session:0:" .. sha256(HELLO),
        session_id = "rs-session", sequence = 0, content_hash = sha256(HELLO),
        metadata = { name = "hello.txt", custom = { depth = 2 } }, name = "hello.txt",
        artifact_type = "document", mime_type = "text/plain", size_bytes = 11,
        created_at = 1736935800000000, created_by = "rs-agent", version = 2,
        parent_artifact_id = "rs-session:9:abc", tags = { "greeting" },
        stored_at = 1736935801000000, updated_at = 1736935802000000 },
      -- the short form: no created_by, parent_artifact_id or tags
      { tenant_id = tenant, artifact_id = "rs-session:1:" .. sha256(COMP),
        session_id = "rs-session", sequence = 1, content_hash = sha256(COMP),
        metadata = {}, name = "c.bin", artifact_type = "binary",
        mime_type = "application/octet-stream", size_bytes = #COMP,
        created_at = 1736935800000000, version = 1, stored_at = 1736935800000000,
        updated_at = 1736935800000000 },
    }
    local session = { id = "0e5f9a2c-1b3d-4e6f-8a9b-0c1d2e3f4a5b", tenant_id = tenant,
                      session_id = "rs-session", session_data = {}, status = "active",
                      created_at = 1736935700000000, last_accessed_at = 1736935700000000,
                      artifact_count = 2, updated_at = 1736935700000000 }
    -- artifacts before sessions: the import must not need them first
    return '{"version":"1.0","exported_at":"2025-01-15T10:30:00Z","source_backend":'
           .. '"postgresql","migrations":["V9","V10"],"data":{"artifacts":'
           .. storage.json_encode { content = content, artifacts = artifacts }
           .. ',"sessions":' .. storage.json_encode { session } .. "}}"
  end

  for _, kind in ipairs { "memory", "sqlite", "postgres" } do
    it("imports rs-llmspell's records into " .. kind .. " and exports them back", function()
      local tenant = helpers.unique_tenant("artrs")
      local db = open(kind, tenant)
      local st = storage.importer(db):from_string(rs_doc(tenant))
      assert.same({ 2, 2 }, { st.artifacts, st.artifact_content })
      local a = db:artifacts()
      local hello, info = a:get("rs-session:0:" .. sha256(HELLO))
      assert.equal(HELLO, hello)
      assert.same({ "hello.txt", "document", "rs-agent", 2, "rs-session:9:abc", { "greeting" },
                    1736935800, 1736935801, 1736935802 },
                  { info.name, info.type, info.created_by, info.version,
                    info.parent_artifact_id, info.tags, info.created_at, info.stored_at,
                    info.updated_at })
      assert.same({ name = "hello.txt", custom = { depth = 2 } }, info.metadata)
      local comp, cinfo = a:get("rs-session:1:" .. sha256(COMP))
      assert.equal(COMP, comp)
      assert.same({}, cinfo.tags)
      assert.is_nil(cinfo.created_by)
      assert.equal(2, db:sessions():get("rs-session").artifact_count)
      -- back out: the same records, the compressed one now as plain bytes
      local sec = section(export(db))
      local want = storage.json_decode(rs_doc(tenant)).data.artifacts
      for _, r in ipairs(want.content) do
        if r.content_hash == sha256(COMP) then
          r.data, r.is_compressed, r.size_bytes = b64(COMP), false, #COMP
        end
      end
      want.artifacts[2].tags = {}
      table.sort(want.content, function(x, y) return x.content_hash < y.content_hash end)
      assert.same(want, sec)
      -- new puts count on from the imported sequences and references
      assert.equal(2, a:put("rs-session", HELLO).sequence)
      assert.is_true(a:put("rs-session", COMP).deduplicated)
      assert.equal(4, db:sessions():get("rs-session").artifact_count)
    end)
  end

  it("refuses a record whose bytes do not hash to its content_hash, importing nothing",
     function()
    local tenant = helpers.unique_tenant("artbad")
    for _, kind in ipairs { "memory", "sqlite", "postgres" } do
      local db = open(kind, tenant)
      local err = err_of(function()
        storage.importer(db):from_string(rs_doc(tenant, { hash = sha256("something else") }))
      end)
      assert.equal("format", err.code)
      assert.matches("not the SHA-256 of data", err.message, 1, true)
      err = err_of(function()
        storage.importer(db):from_string(rs_doc(tenant, { data = "bm90IGx6NA==" }))
      end)
      assert.equal("format", err.code)
      assert.matches("LZ4", err.message, 1, true)
      assert.equal(0, db:artifacts():stats().artifacts)
      assert.same({}, db:sessions():list())
    end
  end)
end)
