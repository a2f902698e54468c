--- Dimension routing: from an embedding model's name, or from a vector's
-- length, to the vector collection that holds vectors of that size.
--
-- Vectors of different dimensions cannot share an HNSW index, so an
-- application that uses several embedding models needs one collection per
-- dimension. A router picks (and on first use creates) that collection:
--
--    local router = require "llmspell.storage.router"
--    local r = router.new(db, { prefix = "emb" })
--    local col = r:for_model("openai/text-embedding-3-small")  --> emb_1536
--    r:for_vector(embedding):add { id = "doc1", vector = embedding }
--
-- Collection names are `<prefix>_<dimension>` for collections using the
-- router's metric, and `<prefix>_<dimension>_<metric>` for models that
-- declare another metric. The rule depends only on the model's own
-- dimension and metric, never on which other models are registered, so
-- registering a model later never renames an existing collection.
--
-- @module llmspell.storage.router

local core = require "llmspell.storage.core"

local M = {}

-- Metric name -> the canonical name (the one in collection names); the
-- aliases are rs-llmspell's, as the core takes them (vector/distance.c).
local METRICS = { cosine = "cosine", l2 = "l2", ip = "ip", l1 = "l1", euclidean = "l2",
                  inner_product = "ip", innerproduct = "ip", manhattan = "l1" }
local limits = core.limits
local MAX_DIM = limits.max_dimension
-- A prefix leaves room for the longest suffix, "_<max dimension>_cosine",
-- within a collection name (limits.max_name).
local MAX_PREFIX = limits.max_name - #string.format("_%d_%s", MAX_DIM, "cosine")
-- Any character a collection name may not hold (limits.name_chars is "[...]").
local NOT_NAME_CHAR = "[^" .. limits.name_chars:sub(2)

--- The built-in embedding models: `{ name, dimension, provider, aliases }`.
-- Every built-in model's recommended metric is cosine (the OpenAI, Cohere,
-- Voyage and Google models return unit vectors, for which cosine and inner
-- product rank alike). Names are matched case-insensitively; `aliases` are
-- other names the same model goes by (Ollama tags, older spellings).
local BUILTIN = {
  -- OpenAI
  { "text-embedding-3-small", 1536, "OpenAI" },
  { "text-embedding-3-large", 3072, "OpenAI" },
  { "text-embedding-ada-002", 1536, "OpenAI" },
  -- sentence-transformers
  { "all-MiniLM-L6-v2", 384, "sentence-transformers", { "all-minilm" } },
  { "all-MiniLM-L12-v2", 384, "sentence-transformers" },
  { "all-mpnet-base-v2", 768, "sentence-transformers" },
  -- BAAI
  { "bge-small-en-v1.5", 384, "BAAI" },
  { "bge-base-en-v1.5", 768, "BAAI" },
  { "bge-large-en-v1.5", 1024, "BAAI" },
  { "bge-m3", 1024, "BAAI" },
  -- intfloat
  { "e5-small-v2", 384, "intfloat" },
  { "e5-base-v2", 768, "intfloat" },
  { "e5-large-v2", 1024, "intfloat" },
  { "multilingual-e5-small", 384, "intfloat" },
  { "multilingual-e5-base", 768, "intfloat" },
  { "multilingual-e5-large", 1024, "intfloat" },
  -- Nomic
  { "nomic-embed-text-v1", 768, "Nomic" },
  { "nomic-embed-text-v1.5", 768, "Nomic", { "nomic-embed-text" } },
  -- Cohere
  { "embed-english-v3.0", 1024, "Cohere" },
  { "embed-multilingual-v3.0", 1024, "Cohere" },
  { "embed-english-light-v3.0", 384, "Cohere" },
  { "embed-multilingual-light-v3.0", 384, "Cohere" },
  -- mixedbread
  { "mxbai-embed-large-v1", 1024, "mixedbread", { "mxbai-embed-large" } },
  -- Jina
  { "jina-embeddings-v2-small-en", 512, "Jina" },
  { "jina-embeddings-v2-base-en", 768, "Jina" },
  -- Voyage
  { "voyage-2", 1024, "Voyage" },
  { "voyage-large-2", 1536, "Voyage" },
  { "voyage-code-2", 1536, "Voyage" },
  -- Google
  { "text-embedding-004", 768, "Google" },
  -- thenlper
  { "gte-small", 384, "thenlper" },
  { "gte-base", 768, "thenlper" },
  { "gte-large", 1024, "thenlper" },
}

--- Provider prefixes accepted before a model name ("openai/...",
-- "sentence-transformers/...", "BAAI/...", LiteLLM's "ollama/...",
-- Gemini's "models/..."); they may be stacked ("huggingface/BAAI/...").
local PROVIDER_PREFIXES = {}
for _, p in ipairs {
  "openai", "azure", "azure_openai", "sentence-transformers", "baai", "intfloat", "nomic-ai",
  "nomic", "cohere", "mixedbread-ai", "jinaai", "jina_ai", "voyageai", "voyage", "thenlper",
  "google", "models", "gemini", "vertex_ai", "huggingface", "hf", "ollama",
} do
  PROVIDER_PREFIXES[p] = true
end

-- Adds the built-in models to an index (lowercase name -> record), each
-- record shared by its name and its aliases; `metric` overrides the
-- recommended one.
local function add_builtin(index, metric)
  for _, m in ipairs(BUILTIN) do
    local rec = { name = m[1], dimension = m[2], metric = metric or "cosine", provider = m[3] }
    index[m[1]:lower()] = rec
    for _, alias in ipairs(m[4] or {}) do index[alias] = rec end
  end
  return index
end

local builtin_index = add_builtin({})

-- Raises a bad-argument error; `level` as for `error` (2: the caller of the
-- function calling argerror).
local function argerror(level, n, fname, fmt, ...)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, string.format(fmt, ...)),
        level + 1)
end

-- Finds a model record in `index`: the whole lowercased name first, then
-- with known provider prefixes removed one at a time, and without an
-- Ollama-style ":latest" tag.
local function lookup(index, name)
  local key = name:lower():gsub(":latest$", "")
  while true do
    local rec = index[key]
    if rec then return rec end
    local first, rest = key:match("^([^/]+)/(.+)$")
    if not first or not PROVIDER_PREFIXES[first] then return nil end
    key = rest
  end
end

-- Sorted model records (unique, by name) of an index.
local function list_models(index)
  local seen, out = {}, {}
  for _, rec in pairs(index) do
    if not seen[rec] then
      seen[rec] = true
      out[#out + 1] = { name = rec.name, dimension = rec.dimension, metric = rec.metric,
                        provider = rec.provider }
    end
  end
  table.sort(out, function(a, b) return a.name:lower() < b.name:lower() end)
  return out
end

local function names_of(models)
  local names = {}
  for i, m in ipairs(models) do names[i] = m.name end
  return table.concat(names, ", ")
end

--- The dimension and recommended metric of a built-in model.
--
--    router.dimension_of("BAAI/bge-base-en-v1.5")   --> 768, "cosine"
--
-- @tparam string model a model name (case-insensitive; provider prefixes
--   such as `openai/` or `sentence-transformers/` accepted)
-- @treturn[1] integer the dimension
-- @treturn[1] string the metric
-- @treturn[2] nil when the model is not built in
-- @raise bad argument when `model` is not a string
function M.dimension_of(model)
  if type(model) ~= "string" then
    argerror(2, 1, "dimension_of", "string model name expected, got %s", type(model))
  end
  local rec = lookup(builtin_index, model)
  if rec then return rec.dimension, rec.metric end
  return nil
end

--- The built-in models, sorted by name.
-- @treturn table an array of `{ name=, dimension=, metric=, provider= }`
function M.models() return list_models(builtin_index) end

local Router = {}
Router.__index = Router
Router.__name = "llmspell.storage.Router"

local NEW_OPTIONS = {
  prefix = true, metric = true, models = true, builtin = true, collection_options = true,
}

-- Checks one entry of the `models` option (errors blame the caller of
-- `new`, three levels up); returns a record.
local function custom_model(name, spec, default_metric)
  if type(name) ~= "string" or name == "" then
    argerror(3, 2, "new", "option 'models': model names must be non-empty strings, got %s",
             type(name))
  end
  local where = string.format("models[%q]", name)
  local dimension, metric = spec, nil
  if type(spec) == "table" then
    for k in pairs(spec) do
      if k ~= "dimension" and k ~= "metric" then
        argerror(3, 2, "new", "%s: unknown field '%s' (expected dimension, metric)", where,
                 tostring(k))
      end
    end
    dimension, metric = spec.dimension, spec.metric
  end
  local d = type(dimension) == "number" and math.tointeger(dimension) or nil
  if not d or d < 1 or d > MAX_DIM then
    argerror(3, 2, "new", "%s: dimension must be an integer 1..%d, got %s", where, MAX_DIM,
             tostring(dimension))
  end
  if metric ~= nil and not METRICS[metric] then
    argerror(3, 2, "new", "%s: metric must be \"cosine\", \"l2\", \"ip\" or \"l1\"", where)
  end
  return { name = name, dimension = d, metric = METRICS[metric] or default_metric,
           provider = "custom" }
end

-- True when db looks like a store: it has the collection API.
local function has_collections(db)
  local t = type(db)
  if t ~= "userdata" and t ~= "table" then return false end
  local ok, c, cc = pcall(function() return db.collection, db.create_collection end)
  return ok and c ~= nil and cc ~= nil
end

--- Creates a router over a store.
--
--    local r = router.new(db, {
--      prefix = "emb",                          -- collections emb_384, emb_1536, ...
--      metric = "cosine",                       -- the router's metric
--      models = { ["my-model"] = 512,           -- extra (or overriding) models
--                 ["my-l2-model"] = { dimension = 256, metric = "l2" } },
--      collection_options = { preset = "accurate" },  -- for collections it creates
--    })
--
-- Options:
--
-- * `prefix`: start of every collection name (letters, digits, `_ - . : /`,
--   at most 243 bytes: `storage.limits.max_name` less the longest suffix
--   `_4096_cosine`; default `"vectors"`, the name rs-llmspell imports use,
--   so `vectors_768` is where an imported 768-d embedding without a
--   collection lands).
--   A tenant prefix such as `"tenant_acme:emb"` keeps tenants apart.
-- * `metric`: `"cosine"`, `"l2"`, `"ip"` or `"l1"`. It is the metric of the
--   built-in models' collections and of custom models that name none, and
--   the one collections named `<prefix>_<dimension>` use. Default: each
--   built-in model's recommended metric, which is `"cosine"` for all of them.
-- * `models`: `{ [name] = dimension | { dimension=, metric= } }`, matched
--   case-insensitively, taking precedence over built-in models of that name.
--   A model whose metric differs from the router's gets a collection of its
--   own, `<prefix>_<dimension>_<metric>`.
-- * `builtin`: `false` to route only the models in `models` (default `true`).
-- * `collection_options`: `m`, `ef_construction`, `ef_search` or `preset`
--   for the collections the router creates (the dimension and metric come
--   from the model).
--
-- `db` is a store handle, or any object with its collection API
-- (`collection`, `create_collection`), such as a tenant handle.
--
-- @tparam userdata|table db the store
-- @tparam[opt] table options
-- @treturn table the router (`llmspell.storage.Router`)
-- @raise bad argument for a missing store or a bad option (unknown options
--   are refused)
function M.new(db, options)
  if not has_collections(db) then
    argerror(2, 1, "new", "store handle expected, got %s", type(db))
  end
  if options ~= nil and type(options) ~= "table" then
    argerror(2, 2, "new", "options table expected, got %s", type(options))
  end
  options = options or {}
  for k in pairs(options) do
    if not NEW_OPTIONS[k] then argerror(2, 2, "new", "unknown option '%s'", tostring(k)) end
  end

  local prefix = options.prefix
  if prefix == nil then prefix = "vectors" end
  if type(prefix) ~= "string" or prefix == "" or #prefix > MAX_PREFIX
      or prefix:find(NOT_NAME_CHAR) then
    argerror(2, 2, "new", "option 'prefix' must be 1..%d bytes of %s", MAX_PREFIX,
             limits.name_chars_text)
  end

  local metric = options.metric
  if metric ~= nil and not METRICS[metric] then
    argerror(2, 2, "new", "option 'metric' must be \"cosine\", \"l2\", \"ip\" or \"l1\"")
  end
  local default_metric = METRICS[metric] or "cosine"

  local copts = {}
  if options.collection_options ~= nil then
    if type(options.collection_options) ~= "table" then
      argerror(2, 2, "new", "option 'collection_options' must be a table")
    end
    for k, v in pairs(options.collection_options) do
      if k == "dimension" or k == "metric" then
        argerror(2, 2, "new", "option 'collection_options' must not set '%s' (it comes "
                 .. "from the model: use the router's 'metric' or the model's entry)", k)
      end
      copts[k] = v
    end
  end

  if options.builtin ~= nil and type(options.builtin) ~= "boolean" then
    argerror(2, 2, "new", "option 'builtin' must be a boolean")
  end
  local index = options.builtin == false and {} or add_builtin({}, METRICS[metric])
  if options.models ~= nil then
    if type(options.models) ~= "table" then
      argerror(2, 2, "new", "option 'models' must be a table { [name] = dimension }")
    end
    local custom = {}
    for name, spec in pairs(options.models) do
      local rec = custom_model(name, spec, default_metric)
      local key = name:lower()
      if custom[key] then
        argerror(2, 2, "new", "option 'models': '%s' and '%s' name the same model",
                 custom[key], name)
      end
      custom[key] = name
      -- a custom entry for a built-in model (under any of its names) replaces it
      local old = lookup(index, name)
      if old and old.provider ~= "custom" then
        for k, r in pairs(index) do
          if r == old then index[k] = rec end
        end
      end
      index[key] = rec
    end
  end
  if next(index) == nil then
    argerror(2, 2, "new", "no models: with builtin = false, option 'models' must name some")
  end

  local dims = {}    -- dimension -> { [metric] = true }
  for _, rec in pairs(index) do
    dims[rec.dimension] = dims[rec.dimension] or {}
    dims[rec.dimension][rec.metric] = true
  end
  return setmetatable({
    _db = db,
    _prefix = prefix,
    _metric = default_metric,
    _index = index,
    _dims = dims,
    _copts = copts,
    -- collection objects whose dimension and metric were checked; by object,
    -- so a collection dropped and created anew is checked again
    _verified = setmetatable({}, { __mode = "k" }),
  }, Router)
end

-- The collection name for a dimension and metric.
local function name_for(self, dimension, metric)
  if metric == self._metric then return string.format("%s_%d", self._prefix, dimension) end
  return string.format("%s_%d_%s", self._prefix, dimension, metric)
end

--- The dimensions this router routes, ascending.
-- @treturn table an array of integers
function Router:dimensions()
  local out = {}
  for d in pairs(self._dims) do out[#out + 1] = d end
  table.sort(out)
  return out
end

--- The models this router knows (built-in and custom), sorted by name.
-- @treturn table an array of `{ name=, dimension=, metric=, provider= }`
--   (`provider` is `"custom"` for models given in `options.models`)
function Router:models() return list_models(self._index) end

--- The dimension and metric of a model this router knows.
-- @tparam string model a model name (case-insensitive, provider prefixes
--   accepted)
-- @treturn[1] integer the dimension
-- @treturn[1] string the metric
-- @treturn[2] nil when the router does not know the model
function Router:dimension_of(model)
  if type(model) ~= "string" then
    argerror(2, 1, "dimension_of", "string model name expected, got %s", type(model))
  end
  local rec = lookup(self._index, model)
  if rec then return rec.dimension, rec.metric end
  return nil
end

-- Resolves a model name; raises (blaming the caller of `fname`) when unknown.
local function resolve_model(self, fname, model)
  if type(model) ~= "string" then
    error(string.format("bad argument #1 to '%s' (string model name expected, got %s)",
                        fname, type(model)), 3)
  end
  local rec = lookup(self._index, model)
  if not rec then
    error(string.format("bad argument #1 to '%s' (unknown embedding model '%s'; known "
                        .. "models: %s; add others with the router's 'models' option)",
                        fname, model, names_of(list_models(self._index))), 3)
  end
  return rec.dimension, rec.metric
end

-- Resolves a vector length (and optional metric); raises when unsupported.
local function resolve_length(self, fname, n, metric)
  local metrics = self._dims[n]
  if not metrics then
    local known = {}
    for _, d in ipairs(self:dimensions()) do known[#known + 1] = tostring(d) end
    error(string.format("bad argument #1 to '%s' (no known embedding model has %d "
                        .. "dimensions; known dimensions: %s)", fname, n,
                        table.concat(known, ", ")), 3)
  end
  if metric ~= nil then
    if not METRICS[metric] then
      error(string.format("bad argument #2 to '%s' (metric must be \"cosine\", \"l2\", "
                          .. "\"ip\" or \"l1\")", fname), 3)
    end
    return n, METRICS[metric]
  end
  if metrics[self._metric] then return n, self._metric end
  local list = {}
  for m in pairs(metrics) do list[#list + 1] = m end
  table.sort(list)
  if #list == 1 then return n, list[1] end
  error(string.format("bad argument #2 to '%s' (models of %d dimensions use metrics %s; "
                      .. "pass the metric)", fname, n, table.concat(list, " and ")), 3)
end

-- The length of a vector argument: a Lua array or packed float32 string.
local function vector_length(fname, v)
  if type(v) == "string" then
    if #v % 4 ~= 0 then
      error(string.format("bad argument #1 to '%s' (packed vector of %d bytes: not a "
                          .. "multiple of 4 (float32))", fname, #v), 3)
    end
    return #v // 4
  elseif type(v) == "table" then
    return #v
  end
  error(string.format("bad argument #1 to '%s' (vector expected (array of numbers or "
                      .. "packed float32 string), got %s)", fname, type(v)), 3)
end

--- The name of the collection for a model or a dimension, without touching
-- the store.
--
--    r:collection_name("text-embedding-3-small")   --> "emb_1536", 1536, "cosine"
--    r:collection_name(384)                        --> "emb_384", 384, "cosine"
--
-- @tparam string|integer model_or_dimension a model name, or a vector length
-- @tparam[opt] string metric with a dimension: the metric (see `for_vector`)
-- @treturn string the collection name
-- @treturn integer the dimension
-- @treturn string the metric
-- @raise bad argument for an unknown model or length (listing the known ones)
function Router:collection_name(model_or_dimension, metric)
  local dim, m
  if math.type(model_or_dimension) == "integer" then
    dim, m = resolve_length(self, "collection_name", model_or_dimension, metric)
  else
    dim, m = resolve_model(self, "collection_name", model_or_dimension)
  end
  return name_for(self, dim, m), dim, m
end

-- Raises an error object `conflict` for an existing collection that does not
-- fit.
local function check_fits(col, name, dimension, metric)
  local st = col:stats()
  if st.dimension ~= dimension or st.metric ~= metric then
    error(core.error("conflict", string.format(
      "collection '%s' exists with %d dimensions and metric %s, but the router routes "
      .. "%d-dimension %s vectors to it; drop or rename it, or choose another prefix",
      name, st.dimension, st.metric, dimension, metric)), 0)
  end
end

local function is_code(err, code) return type(err) == "table" and err.code == code end

-- Opens or creates the collection `name`, checking an existing one once.
local function open(self, name, dimension, metric)
  local db = self._db
  local ok, col = pcall(db.collection, db, name)
  if not ok then
    if not is_code(col, "not_found") then error(col, 0) end
    local copts = { dimension = dimension, metric = metric }
    for k, v in pairs(self._copts) do copts[k] = v end
    local created, err = pcall(db.create_collection, db, name, copts)
    if created then
      self._verified[err] = true
      return err
    end
    -- another handle or process created it between our two calls
    if not is_code(err, "conflict") then error(err, 0) end
    col = db:collection(name)
  end
  if not self._verified[col] then
    check_fits(col, name, dimension, metric)
    self._verified[col] = true
  end
  return col
end

--- The collection for a model's embeddings, created on first use.
--
--    local col = r:for_model("sentence-transformers/all-MiniLM-L6-v2")  -- vectors_384
--
-- @tparam string model a model name (case-insensitive; provider prefixes
--   such as `openai/`, `sentence-transformers/`, `BAAI/` accepted)
-- @treturn userdata the collection (`llmspell.storage.Collection`)
-- @treturn string its name
-- @raise bad argument for an unknown model (the message lists the known
--   ones); an error object `conflict` when a collection of that name exists
--   with another dimension or metric; the store's own errors
function Router:for_model(model)
  local dim, metric = resolve_model(self, "for_model", model)
  local name = name_for(self, dim, metric)
  return open(self, name, dim, metric), name
end

--- The collection for a vector, chosen by its length, created on first use.
--
-- The metric is `metric` when given; otherwise the router's metric when a
-- known model of that dimension uses it, else the one metric the models of
-- that dimension use (two or more different ones: pass `metric`).
--
--    local col = r:for_vector(embedding)    -- 768 numbers -> vectors_768
--    col:add { id = "doc1", vector = embedding }
--
-- @tparam table|string vector an array of numbers, or a packed
--   little-endian float32 string (`string.pack("<f...")`, 4 bytes a number)
-- @tparam[opt] string metric `"cosine"`, `"l2"`, `"ip"` or `"l1"`
-- @treturn userdata the collection (`llmspell.storage.Collection`)
-- @treturn string its name
-- @raise bad argument for a length no known model has (the message lists
--   the known dimensions), a packed string whose size is not a multiple of
--   4, or an ambiguous metric; an error object `conflict` when a collection
--   of that name exists with another dimension or metric
function Router:for_vector(vector, metric)
  local n = vector_length("for_vector", vector)
  local dim, m = resolve_length(self, "for_vector", n, metric)
  local name = name_for(self, dim, m)
  return open(self, name, dim, m), name
end

--- Describes the router: `llmspell.storage.Router (prefix emb, cosine, 32
-- models, dimensions 384/512/768/1024/1536/3072)`.
-- @treturn string
function Router:__tostring()
  local n = #list_models(self._index)
  local dims = {}
  for _, d in ipairs(self:dimensions()) do dims[#dims + 1] = tostring(d) end
  return string.format("llmspell.storage.Router (prefix %s, %s, %d model%s, dimensions %s)",
                       self._prefix, self._metric, n, n == 1 and "" or "s",
                       table.concat(dims, "/"))
end

--- The routers' metatable (methods), for `getmetatable(r) == router.Router`.
M.Router = Router

return M
