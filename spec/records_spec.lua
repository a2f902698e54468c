--- storage.records (reading export files record by record) and the JSON
-- codec offered to Lua (storage.json_encode / json_decode / array): the
-- one reader and the one codec the Lua layer uses.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function collect(path, opts)
  local out = {}
  for section, record in storage.records(path, opts) do
    out[#out + 1] = { section = section, record = record }
  end
  return out
end

describe("storage.records", function()
  local path

  before_each(function() path = helpers.tmpname(".json") end)
  after_each(function() os.remove(path) end)

  for _, b in ipairs(helpers.backends()) do
    it("reads back what a " .. b.name .. " store exported, in file order", function()
      if b.setup then b:setup() end
      local db <close> = b.open(nil, b)
      db:set("k1", "\0\1\2 binary", { ttl = 3600 })
      db:set("k2", "text")
      local name = helpers.unique_tenant("c"):gsub("_", "-")
      local col = db:create_collection(name, { dimension = 3, metric = "l2" })
      col:add { id = "v1", vector = { 0.5, -1, 2 }, metadata = { tag = "x", w = 1.5 },
                scope = "s1" }
      storage.exporter(db):to_file(path)
      local recs = collect(path)
      local sections = {}
      for _, r in ipairs(recs) do sections[#sections + 1] = r.section end
      assert.same({ "kv_store", "kv_store", "vector_collections", "vector_embeddings" },
                  sections)
      assert.equal("k1", recs[1].record.key)
      assert.equal("\0\1\2 binary", recs[1].record.value)
      assert.is_nil(recs[1].record.metadata)
      assert.equal("integer", math.type(recs[1].record.expires_at))
      assert.equal("text", recs[2].record.value)
      assert.equal(name, recs[3].record.name)
      assert.equal(3, recs[3].record.dimension)
      local v = recs[4].record
      assert.equal("v1", v.id)
      assert.equal("s1", v.scope)
      assert.equal(3, v.dimension)
      assert.equal(string.pack("<fff", 0.5, -1, 2), v.embedding)
      assert.equal(1.5, v.metadata.w)
      assert.equal("float", math.type(v.metadata.w))
      assert.equal("integer", math.type(v.created_at))
      db:close()
      if b.teardown then b:teardown() end
    end)
  end

  it("gives passthrough sections under their names, and keeps only the sections asked for",
     function()
    write_file(path, [[{"version":"1.0","data":{
      "kv_store":[{"key":"a","value":"AAE="}],
      "sessions":[{"id":"s1"},{"id":"s2"}],
      "knowledge_graph":{"entities":[{"id":"e"}],"relationships":[]},
      "vector_embeddings":{"2":[{"id":"x","embedding":[1,2]},
                                {"id":"y","embedding":"[3,4.5]"}]}}}]])
    local recs = collect(path)
    assert.equal(6, #recs)
    assert.equal("\0\1", recs[1].record.value)
    assert.equal("sessions", recs[2].section)
    assert.same({ id = "s2" }, recs[3].record)
    assert.equal("knowledge_graph", recs[4].section)
    assert.equal("e", recs[4].record.entities[1].id)
    -- an embedding as a JSON array and as pgvector text both come as bytes
    assert.equal(string.pack("<ff", 1, 2), recs[5].record.embedding)
    assert.equal(2, recs[5].record.dimension)
    assert.equal(string.pack("<ff", 3, 4.5), recs[6].record.embedding)
    local only = collect(path, { sections = { "sessions" } })
    assert.equal(2, #only)
    assert.equal("s1", only[1].record.id)
  end)

  it("refuses what the importer refuses, with the same codes", function()
    write_file(path, '{"version":"1.0","data":{"kv_store":[{"key":"a","value":"AA')
    local e = helpers.error_of(collect, path)
    assert.equal("format", e.code)
    assert.matches("truncated", e.message)
    write_file(path, '{"data":{"kv_store":[]}}')
    assert.equal("version", helpers.error_of(collect, path).code)
    write_file(path, '{"version":"2.0","data":{}}')
    assert.equal("version", helpers.error_of(collect, path).code)
    write_file(path, '{"version":"1.0","data":{"kv_store":[{"key":"a","value":"!!"}]}}')
    e = helpers.error_of(collect, path)
    assert.equal("format", e.code)
    assert.matches("not base64", e.message)
    e = helpers.error_of(collect, path .. ".missing")
    assert.equal("io", e.code)
    assert.has_error(function() storage.records(path, { section = { "kv_store" } }) end)
    assert.has_error(function() storage.records(path, { sections = { 1 } }) end)
  end)

  it("is strict JSON and strict base64, as the importer", function()
    local function refused(doc, pattern)
      write_file(path, doc)
      local e = helpers.error_of(collect, path)
      assert.is_true(storage.is_error(e), tostring(e))
      assert.equal("format", e.code)
      assert.matches(pattern, e.message)
      return e
    end
    local e = refused('{"version":"1.0",\f"data":{}}', "byte 18: a form feed outside a string")
    refused('{"version":"1.0","data":{"kv_store":[\v]}}', "vertical tab")
    refused('{"version":"1.0","data":{"kv_store":[{"key":"a","value":"AAE"}]}}',
            "value is not base64")
    refused('{"version":"1.0","data":{"kv_store":[{"key":"a","value":"AAF="}]}}',
            "value is not base64")
    refused('{"version":"1.0","data":{"vector_embeddings":{"1":[{"id":"x",'
            .. '"embedding":"AACAPw"}]}}}', "embedding is not base64")
    refused('{"version":"1.0","data":{"sessions":[{"id":"\xc0\xaf"}]}}', "UTF%-8")
    assert.is_string(e.message)
    -- a value in one piece however long, with escapes that spell base64
    local big = ("\1\2\3"):rep(300000)
    write_file(path, '{"version":"1.0","data":{"kv_store":[{"key":"a","value":"'
               .. ("AQID"):rep(300000):gsub("Q", "\\u0051") .. '"}]}}')
    local recs = collect(path)
    assert.is_true(big == recs[1].record.value)
  end)

  it("closes the file when the loop breaks, and refuses use after close", function()
    write_file(path, '{"version":"1.0","data":{"kv_store":[{"key":"a","value":""},'
               .. '{"key":"b","value":""}]}}')
    local reader
    for _, record, _ in storage.records(path) do
      assert.equal("a", record.key)
      break
    end
    local iter, state, _, closing = storage.records(path)
    reader = closing
    assert.equal(state, closing)
    assert.matches("llmspell.storage.Records %(", tostring(reader))
    local section = iter(state)
    assert.equal("kv_store", section)
    getmetatable(reader).__close(reader)
    assert.matches("closed", tostring(reader))
    assert.equal("closed", helpers.error_of(iter, state).code)
  end)
end)

describe("storage.json_encode / json_decode / array", function()
  it("writes canonical JSON: keys in byte order, integers apart from floats", function()
    assert.equal('{"a":[1,2.5,"x"],"b":1,"c":true}',
                 storage.json_encode({ c = true, b = 1, a = { 1, 2.5, "x" } }))
    assert.equal("2.0", storage.json_encode(2.0))
    assert.equal("null", storage.json_encode(nil))
    assert.equal('"caf\u{e9}\\n"', storage.json_encode("caf\u{e9}\n"))
  end)

  it("keeps an empty array an array when it is marked", function()
    assert.equal('{"e":[],"o":{}}', storage.json_encode({ e = storage.array(), o = {} }))
    local t = { 1 }
    assert.equal(t, storage.array(t))
    assert.equal("[1]", storage.json_encode(t))
  end)

  it("decodes exactly: int64 integers, floats, null left out, arrays marked", function()
    local v = storage.json_decode('{"i":9007199254740993,"f":1.0,"n":null,"a":[],"o":{}}')
    assert.equal(9007199254740993, v.i)
    assert.equal("integer", math.type(v.i))
    assert.equal("float", math.type(v.f))
    assert.is_nil(v.n)
    assert.equal('{"a":[],"f":1.0,"i":9007199254740993,"o":{}}', storage.json_encode(v))
  end)

  it("refuses what JSON cannot carry, naming where it sits", function()
    local ok, err = pcall(storage.json_encode, { list = { 1, 0 / 0 } })
    assert.is_false(ok)
    assert.matches("value.list%[2%]: NaN", err)
    ok, err = pcall(storage.json_encode, { s = "bad\xff" })
    assert.is_false(ok)
    assert.matches("value.s: strings must be UTF%-8", err)
    ok = pcall(storage.json_encode, { f = print })
    assert.is_false(ok)
    local e = helpers.error_of(storage.json_decode, '{"a":')
    assert.equal("format", e.code)
    e = helpers.error_of(storage.json_decode, '{"a":1} x')
    assert.equal("format", e.code)
    -- strict RFC 8259: whitespace is space, tab, LF and CR only
    e = helpers.error_of(storage.json_decode, '{"a":\f1}')
    assert.equal("format", e.code)
    assert.matches("at byte 6: a form feed outside a string", e.message)
    e = helpers.error_of(storage.json_decode, '[1]\v')
    assert.equal("format", e.code)
    assert.matches("at byte 4: a vertical tab", e.message)
    assert.same({ 1, "\f\v" }, storage.json_decode(' \t\r\n[1,"\\f\\u000b"]\n'))
    assert.has_error(function() storage.array("x") end)
  end)
end)
