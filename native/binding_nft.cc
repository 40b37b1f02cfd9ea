// binding_nft.cc — JS ↔ C for nft.c: nftApply, nftDump, nftBuildBatch, nftParseDump.
// Shapes: src/kernel/firewall-api.ts (NftWireBatch / NftWireDump). This layer only converts
// and checks types; the expressions arrive already lowered by src/kernel/nft-lower.ts.
#include "binding.h"

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include "nft.h"

namespace {

using plexd::ThrowError;

// Thrown while converting; turned into one NativeError EINVAL naming the path.
struct BadArg {
	std::string what;
};

// The C batch plus the storage its pointers refer to (kept alive by the worker).
struct Batch {
	std::string table;
	uint8_t family = 0;
	std::deque<std::string> strings;
	std::vector<nft_op> ops;
	std::vector<std::vector<nft_elem>> elems;
	std::vector<std::vector<nft_expr>> exprs;
	std::vector<std::string> desc; // per op, for error objects
	uint32_t genid = 0;
	nft_batch Get() const
	{
		return nft_batch{family, table.c_str(), ops.data(), (uint32_t)ops.size(), genid};
	}
};

uint8_t FamilyOf(const std::string &f)
{
	if (f == "inet")
		return NFPROTO_INET;
	if (f == "ip")
		return NFPROTO_IPV4;
	if (f == "ip6")
		return NFPROTO_IPV6;
	throw BadArg{"family must be inet, ip or ip6"};
}

const char *FamilyName(uint8_t f)
{
	return f == NFPROTO_INET ? "inet" : f == NFPROTO_IPV4 ? "ip" : f == NFPROTO_IPV6 ? "ip6" : "?";
}

std::string Str(Napi::Object o, const char *k, const std::string &path, bool optional = false)
{
	Napi::Value v = o.Get(k);
	if (optional && v.IsUndefined())
		return std::string();
	if (!v.IsString())
		throw BadArg{path + "." + k + " must be a string"};
	std::string s = v.As<Napi::String>().Utf8Value();
	if (s.size() >= NFT_NAME_MAX || s.find('\0') != std::string::npos)
		throw BadArg{path + "." + k + " is too long or contains NUL"};
	return s;
}

bool Has(Napi::Object o, const char *k) { return !o.Get(k).IsUndefined(); }

double Num(Napi::Object o, const char *k, const std::string &path, double lo, double hi)
{
	Napi::Value v = o.Get(k);
	if (!v.IsNumber())
		throw BadArg{path + "." + k + " must be a number"};
	double d = v.As<Napi::Number>().DoubleValue();
	if (!(d >= lo && d <= hi) || d != (double)(int64_t)d)
		throw BadArg{path + "." + k + " out of range"};
	return d;
}

uint32_t U32(Napi::Object o, const char *k, const std::string &path, uint32_t dflt, bool optional)
{
	if (optional && !Has(o, k))
		return dflt;
	return (uint32_t)Num(o, k, path, 0, 4294967295.0);
}

void Bytes(Napi::Object o, const char *k, const std::string &path, uint8_t *dst, uint32_t *len,
	   bool optional = false)
{
	Napi::Value v = o.Get(k);
	*len = 0;
	if (optional && v.IsUndefined())
		return;
	if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
		throw BadArg{path + "." + k + " must be a Uint8Array"};
	Napi::Uint8Array a = v.As<Napi::Uint8Array>();
	if (a.ByteLength() > NFT_DATA_MAX)
		throw BadArg{path + "." + k + " is longer than 64 bytes"};
	memcpy(dst, a.Data(), a.ByteLength());
	*len = (uint32_t)a.ByteLength();
}

void CopyName(char *dst, const std::string &s) { memcpy(dst, s.c_str(), s.size() + 1); }

nft_expr Expr(Napi::Value v, const std::string &path)
{
	if (!v.IsObject())
		throw BadArg{path + " must be an object"};
	Napi::Object o = v.As<Napi::Object>();
	nft_expr x;
	memset(&x, 0, sizeof(x));
	std::string t = Str(o, "type", path);
	const uint32_t REG_MAX = NFT_REG32_15;
	if (t == "payload") {
		x.type = NFT_X_PAYLOAD;
		x.base = U32(o, "base", path, 0, false);
		x.offset = U32(o, "offset", path, 0, false);
		x.len = U32(o, "len", path, 0, false);
		x.dreg = U32(o, "dreg", path, 0, false);
	} else if (t == "meta" || t == "ct") {
		x.type = t == "meta" ? NFT_X_META : NFT_X_CT;
		x.key = U32(o, "key", path, 0, false);
		x.dreg = U32(o, "dreg", path, 0, false);
	} else if (t == "cmp") {
		x.type = NFT_X_CMP;
		x.sreg = U32(o, "sreg", path, 0, false);
		x.op = U32(o, "op", path, 0, false);
		Bytes(o, "data", path, x.data, &x.data_len);
	} else if (t == "bitwise") {
		x.type = NFT_X_BITWISE;
		x.sreg = U32(o, "sreg", path, 0, false);
		x.dreg = U32(o, "dreg", path, 0, false);
		x.len = U32(o, "len", path, 0, false);
		Bytes(o, "mask", path, x.data, &x.data_len);
		Bytes(o, "xor", path, x.xor_, &x.xor_len);
	} else if (t == "lookup") {
		x.type = NFT_X_LOOKUP;
		x.sreg = U32(o, "sreg", path, 0, false);
		x.flags = U32(o, "flags", path, 0, true);
		CopyName(x.name, Str(o, "set", path));
	} else if (t == "counter") {
		x.type = NFT_X_COUNTER;
	} else if (t == "log") {
		x.type = NFT_X_LOG;
		if (Has(o, "prefix")) {
			std::string p = Str(o, "prefix", path);
			if (p.size() >= 128)
				throw BadArg{path + ".prefix is longer than 127 bytes"};
			CopyName(x.name, p);
			x.has_prefix = 1;
		}
		if (Has(o, "level")) {
			x.level = U32(o, "level", path, 0, false);
			x.has_level = 1;
		}
	} else if (t == "immediate") {
		x.type = NFT_X_IMMEDIATE;
		x.verdict = (int32_t)Num(o, "verdict", path, -5, 1);
		if (Has(o, "chain"))
			CopyName(x.name, Str(o, "chain", path));
	} else {
		throw BadArg{path + ".type \"" + t + "\" is not an expression this binding builds"};
	}
	if (x.dreg > REG_MAX || x.sreg > REG_MAX)
		throw BadArg{path + " register out of range"};
	return x;
}

nft_elem Elem(Napi::Value v, const std::string &path)
{
	if (!v.IsObject())
		throw BadArg{path + " must be an object"};
	Napi::Object o = v.As<Napi::Object>();
	nft_elem e;
	memset(&e, 0, sizeof(e));
	Bytes(o, "key", path, e.key, &e.key_len);
	Bytes(o, "keyEnd", path, e.key_end, &e.key_end_len, true);
	e.flags = U32(o, "flags", path, 0, true);
	return e;
}

// Packed element list (src/kernel/nft-packed.ts): records back to back, each
//   u8 keyLen (1..64) | u8 keyEndLen (0..64) | u16 flags (little endian) | key | keyEnd
// One typed array instead of one object per element: converting 20,000 element objects
// property by property costs more than the kernel takes to insert them.
void Packed(Napi::Value v, const std::string &path, std::vector<nft_elem> &store)
{
	if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
		throw BadArg{path + ".packed must be a Uint8Array"};
	Napi::Uint8Array a = v.As<Napi::Uint8Array>();
	const uint8_t *p = a.Data();
	size_t n = a.ByteLength(), off = 0;
	while (off < n) {
		if (n - off < 4)
			throw BadArg{path + ".packed is truncated"};
		uint32_t kl = p[off], kel = p[off + 1];
		uint32_t flags = (uint32_t)p[off + 2] | ((uint32_t)p[off + 3] << 8);
		if (kl == 0 || kl > NFT_DATA_MAX || kel > NFT_DATA_MAX)
			throw BadArg{path + ".packed has a key longer than 64 bytes or an empty key"};
		if (n - off - 4 < (size_t)kl + kel)
			throw BadArg{path + ".packed is truncated"};
		nft_elem e;
		memset(&e, 0, sizeof(e));
		e.key_len = kl;
		e.key_end_len = kel;
		e.flags = flags;
		memcpy(e.key, p + off + 4, kl);
		memcpy(e.key_end, p + off + 4 + kl, kel);
		store.push_back(e);
		off += 4 + (size_t)kl + kel;
	}
}

Napi::Array ArrayAt(Napi::Object o, const char *k, const std::string &path)
{
	Napi::Value v = o.Get(k);
	if (!v.IsArray())
		throw BadArg{path + "." + k + " must be an array"};
	return v.As<Napi::Array>();
}

struct KindName {
	const char *js;
	int kind;
	const char *verb;
};
const KindName kKinds[] = {
    {"addTable", NFT_OP_ADD_TABLE, "add table"},      {"deleteTable", NFT_OP_DEL_TABLE, "delete table"},
    {"flushTable", NFT_OP_FLUSH_TABLE, "flush table"}, {"addChain", NFT_OP_ADD_CHAIN, "add chain"},
    {"deleteChain", NFT_OP_DEL_CHAIN, "delete chain"}, {"flushChain", NFT_OP_FLUSH_CHAIN, "flush chain"},
    {"addSet", NFT_OP_ADD_SET, "add set"},            {"deleteSet", NFT_OP_DEL_SET, "delete set"},
    {"flushSet", NFT_OP_FLUSH_SET, "flush set"},      {"addElements", NFT_OP_ADD_ELEMS, "add element"},
    {"deleteElements", NFT_OP_DEL_ELEMS, "delete element"}, {"addRule", NFT_OP_ADD_RULE, "add rule"},
    {"deleteRule", NFT_OP_DEL_RULE, "delete rule"},
};

std::unique_ptr<Batch> ToBatch(Napi::Value v)
{
	if (!v.IsObject())
		throw BadArg{"batch must be an object"};
	Napi::Object o = v.As<Napi::Object>();
	auto b = std::make_unique<Batch>();
	b->family = FamilyOf(Str(o, "family", "batch"));
	b->table = Str(o, "table", "batch");
	if (b->table.empty())
		throw BadArg{"batch.table must not be empty"};
	if (Has(o, "genid"))
		b->genid = (uint32_t)Num(o, "genid", "batch", 1, 4294967295.0);
	Napi::Array ops = ArrayAt(o, "ops", "batch");
	uint32_t n = ops.Length();
	b->ops.resize(n);
	b->elems.resize(n);
	b->exprs.resize(n);
	std::string where = std::string(FamilyName(b->family)) + " " + b->table;
	for (uint32_t i = 0; i < n; i++) {
		std::string path = "batch.ops[" + std::to_string(i) + "]";
		Napi::Value ov = ops.Get(i);
		if (!ov.IsObject())
			throw BadArg{path + " must be an object"};
		Napi::Object op = ov.As<Napi::Object>();
		nft_op &c = b->ops[i];
		memset(&c, 0, sizeof(c));
		std::string kind = Str(op, "op", path);
		const KindName *k = nullptr;
		for (const KindName &kn : kKinds)
			if (kind == kn.js)
				k = &kn;
		if (!k)
			throw BadArg{path + ".op \"" + kind + "\" is unknown"};
		c.kind = k->kind;
		bool tableOp = c.kind == NFT_OP_ADD_TABLE || c.kind == NFT_OP_DEL_TABLE ||
			       c.kind == NFT_OP_FLUSH_TABLE;
		std::string desc = std::string(k->verb) + " " + where;
		if (!tableOp) {
			const char *key = (c.kind == NFT_OP_ADD_ELEMS || c.kind == NFT_OP_DEL_ELEMS ||
					   c.kind == NFT_OP_FLUSH_SET)
					      ? "set"
					      : (c.kind == NFT_OP_ADD_RULE || c.kind == NFT_OP_DEL_RULE ||
						 c.kind == NFT_OP_FLUSH_CHAIN)
						    ? "chain"
						    : "name";
			b->strings.push_back(Str(op, key, path));
			c.name = b->strings.back().c_str();
			desc += " " + b->strings.back();
		}
		switch (c.kind) {
		case NFT_OP_ADD_CHAIN:
			if (Has(op, "hook")) {
				c.has_hook = 1;
				c.hooknum = U32(op, "hook", path, 0, false);
				c.prio = (int32_t)Num(op, "priority", path, INT32_MIN, INT32_MAX);
				if (Has(op, "policy")) {
					c.has_policy = 1;
					c.policy = U32(op, "policy", path, 0, false);
				}
				if (Has(op, "chainType")) {
					b->strings.push_back(Str(op, "chainType", path));
					c.chain_type = b->strings.back().c_str();
				}
			}
			break;
		case NFT_OP_ADD_SET: {
			c.set_flags = U32(op, "flags", path, 0, true);
			c.key_type = U32(op, "keyType", path, 0, false);
			c.key_len = U32(op, "keyLen", path, 0, false);
			if (Has(op, "fieldLens")) {
				Napi::Array f = ArrayAt(op, "fieldLens", path);
				if (f.Length() > NFT_FIELDS_MAX)
					throw BadArg{path + ".fieldLens has more than 16 fields"};
				c.nfields = f.Length();
				for (uint32_t j = 0; j < c.nfields; j++) {
					Napi::Value fv = f.Get(j);
					if (!fv.IsNumber())
						throw BadArg{path + ".fieldLens must hold numbers"};
					c.field_len[j] = fv.As<Napi::Number>().Uint32Value();
				}
			}
			break;
		}
		case NFT_OP_ADD_ELEMS:
		case NFT_OP_DEL_ELEMS: {
			// `elements` (objects) and/or `packed` (one buffer); objects first.
			Napi::Value packed = op.Get("packed");
			auto &store = b->elems[i];
			if (!packed.IsUndefined() && op.Get("elements").IsUndefined()) {
				Packed(packed, path, store);
			} else {
				Napi::Array a = ArrayAt(op, "elements", path);
				store.reserve(a.Length());
				for (uint32_t j = 0; j < a.Length(); j++) {
					// The path is only spelled out on error (20,000 strings otherwise).
					try {
						store.push_back(Elem(a.Get(j), std::string()));
					} catch (const BadArg &e) {
						throw BadArg{path + ".elements[" + std::to_string(j) + "]" + e.what};
					}
				}
				if (!packed.IsUndefined())
					Packed(packed, path, store);
			}
			c.elems = store.data();
			c.nelems = (uint32_t)store.size();
			break;
		}
		case NFT_OP_ADD_RULE: {
			Napi::Array a = ArrayAt(op, "exprs", path);
			auto &store = b->exprs[i];
			store.reserve(a.Length());
			for (uint32_t j = 0; j < a.Length(); j++)
				store.push_back(Expr(a.Get(j), path + ".exprs[" + std::to_string(j) + "]"));
			c.exprs = store.data();
			c.nexprs = (uint32_t)store.size();
			desc += " #" + std::to_string(i);
			break;
		}
		case NFT_OP_DEL_RULE:
			c.handle = (uint64_t)Num(op, "handle", path, 1, 9007199254740991.0);
			desc += " handle " + std::to_string(c.handle);
			break;
		}
		b->desc.push_back(desc);
	}
	return b;
}

// ---- C → JS --------------------------------------------------------------------------------

Napi::Object ExprToJs(Napi::Env env, const nft_expr &x)
{
	Napi::Object o = Napi::Object::New(env);
	switch (x.type) {
	case NFT_X_PAYLOAD:
		o.Set("type", "payload");
		o.Set("base", x.base);
		o.Set("offset", x.offset);
		o.Set("len", x.len);
		o.Set("dreg", x.dreg);
		break;
	case NFT_X_META:
	case NFT_X_CT:
		o.Set("type", x.type == NFT_X_META ? "meta" : "ct");
		o.Set("key", x.key);
		o.Set("dreg", x.dreg);
		break;
	case NFT_X_CMP:
		o.Set("type", "cmp");
		o.Set("sreg", x.sreg);
		o.Set("op", x.op);
		o.Set("data", plexd::CopyBytes(env, x.data, x.data_len));
		break;
	case NFT_X_BITWISE:
		o.Set("type", "bitwise");
		o.Set("sreg", x.sreg);
		o.Set("dreg", x.dreg);
		o.Set("len", x.len);
		o.Set("mask", plexd::CopyBytes(env, x.data, x.data_len));
		o.Set("xor", plexd::CopyBytes(env, x.xor_, x.xor_len));
		break;
	case NFT_X_LOOKUP:
		o.Set("type", "lookup");
		o.Set("set", x.name);
		o.Set("sreg", x.sreg);
		if (x.flags)
			o.Set("flags", x.flags);
		break;
	case NFT_X_COUNTER:
		o.Set("type", "counter");
		o.Set("packets", (double)x.packets);
		o.Set("bytes", (double)x.bytes);
		break;
	case NFT_X_LOG:
		o.Set("type", "log");
		if (x.has_prefix)
			o.Set("prefix", x.name);
		if (x.has_level)
			o.Set("level", x.level);
		break;
	case NFT_X_IMMEDIATE:
		o.Set("type", "immediate");
		o.Set("verdict", x.verdict);
		if (x.name[0])
			o.Set("chain", x.name);
		break;
	default:
		o.Set("type", "unknown");
		o.Set("name", x.name);
	}
	return o;
}

// Parsed objects collected on the worker thread, converted on the JS thread.
struct Dump {
	std::vector<nft_table_info> tables;
	std::vector<nft_chain_info> chains;
	std::vector<nft_set_info> sets;
	std::vector<nft_elem_info> elems;
	std::vector<std::unique_ptr<nft_rule_info>> rules;

	nft_dump_cb Sink()
	{
		nft_dump_cb cb;
		memset(&cb, 0, sizeof(cb));
		cb.arg = this;
		cb.table = [](const nft_table_info *t, void *a) {
			static_cast<Dump *>(a)->tables.push_back(*t);
			return 0;
		};
		cb.chain = [](const nft_chain_info *c, void *a) {
			static_cast<Dump *>(a)->chains.push_back(*c);
			return 0;
		};
		cb.set = [](const nft_set_info *s, void *a) {
			static_cast<Dump *>(a)->sets.push_back(*s);
			return 0;
		};
		cb.elem = [](const nft_elem_info *e, void *a) {
			static_cast<Dump *>(a)->elems.push_back(*e);
			return 0;
		};
		cb.rule = [](const nft_rule_info *r, void *a) {
			auto copy = std::make_unique<nft_rule_info>(*r);
			static_cast<Dump *>(a)->rules.push_back(std::move(copy));
			return 0;
		};
		return cb;
	}

	Napi::Object ToJs(Napi::Env env) const
	{
		Napi::Object out = Napi::Object::New(env);
		Napi::Array ts = Napi::Array::New(env), cs = Napi::Array::New(env),
			    ss = Napi::Array::New(env), es = Napi::Array::New(env),
			    rs = Napi::Array::New(env);
		for (const auto &t : tables) {
			Napi::Object o = Napi::Object::New(env);
			o.Set("family", FamilyName(t.family));
			o.Set("name", t.name);
			o.Set("flags", t.flags);
			o.Set("use", t.use);
			o.Set("handle", (double)t.handle);
			ts.Set(ts.Length(), o);
		}
		for (const auto &c : chains) {
			Napi::Object o = Napi::Object::New(env);
			o.Set("name", c.name);
			o.Set("handle", (double)c.handle);
			o.Set("use", c.use);
			if (c.has_hook) {
				o.Set("hook", c.hooknum);
				o.Set("priority", c.prio);
				o.Set("chainType", c.type);
			}
			if (c.has_policy)
				o.Set("policy", c.policy);
			cs.Set(cs.Length(), o);
		}
		for (const auto &s : sets) {
			Napi::Object o = Napi::Object::New(env);
			o.Set("name", s.name);
			o.Set("handle", (double)s.handle);
			o.Set("flags", s.flags);
			o.Set("keyType", s.key_type);
			o.Set("keyLen", s.key_len);
			Napi::Array f = Napi::Array::New(env);
			for (uint32_t i = 0; i < s.nfields; i++)
				f.Set(i, s.field_len[i]);
			o.Set("fieldLens", f);
			ss.Set(ss.Length(), o);
		}
		for (const auto &e : elems) {
			Napi::Object o = Napi::Object::New(env);
			o.Set("set", e.set);
			o.Set("key", plexd::CopyBytes(env, e.e.key, e.e.key_len));
			if (e.e.key_end_len)
				o.Set("keyEnd", plexd::CopyBytes(env, e.e.key_end, e.e.key_end_len));
			o.Set("flags", e.e.flags);
			es.Set(es.Length(), o);
		}
		for (const auto &r : rules) {
			Napi::Object o = Napi::Object::New(env);
			o.Set("chain", r->chain);
			o.Set("handle", (double)r->handle);
			Napi::Array xs = Napi::Array::New(env);
			for (uint32_t i = 0; i < r->nexprs; i++)
				xs.Set(i, ExprToJs(env, r->exprs[i]));
			o.Set("exprs", xs);
			rs.Set(rs.Length(), o);
		}
		out.Set("tables", ts);
		out.Set("chains", cs);
		out.Set("sets", ss);
		out.Set("elements", es);
		out.Set("rules", rs);
		return out;
	}
};

class ApplyWorker : public plexd::PromiseWorker {
      public:
	ApplyWorker(Napi::Env env, std::unique_ptr<Batch> b)
	    : PromiseWorker(env, "nft.apply", std::string(FamilyName(b->family)) + " " + b->table),
	      batch_(std::move(b))
	{
	}

      protected:
	void Execute() override
	{
		nft_batch b = batch_->Get();
		nl_err err;
		long bad = -1;
		int r = nft_apply(&b, &err, &bad, &gen_);
		if (r < 0) {
			if (bad >= 0 && (size_t)bad < batch_->desc.size())
				object_ = batch_->desc[(size_t)bad];
			Fail(r, err.msg);
		}
	}
	// The generation right after the commit (0: not reported).
	Napi::Value Resolve(Napi::Env env) override { return Napi::Number::New(env, gen_); }

      private:
	std::unique_ptr<Batch> batch_;
	uint32_t gen_ = 0;
};

class DumpWorker : public plexd::PromiseWorker {
      public:
	DumpWorker(Napi::Env env, uint8_t family, std::string table)
	    : PromiseWorker(env, "nft.dump", std::string(FamilyName(family)) + " " + table),
	      family_(family), table_(std::move(table))
	{
	}

      protected:
	void Execute() override
	{
		nft_dump_cb cb = dump_.Sink();
		nl_err err;
		int r = nft_dump(family_, table_.c_str(), &cb, &err);
		if (r < 0)
			Fail(r, err.msg);
	}
	Napi::Value Resolve(Napi::Env env) override { return dump_.ToJs(env); }

      private:
	uint8_t family_;
	std::string table_;
	Dump dump_;
};

std::unique_ptr<Batch> BatchArg(const Napi::CallbackInfo &info, const char *op)
{
	try {
		return ToBatch(info.Length() ? info[0] : info.Env().Undefined());
	} catch (const BadArg &e) {
		ThrowError(info.Env(), EINVAL, op, "", e.what);
	}
}

Napi::Value NftApply(const Napi::CallbackInfo &info)
{
	auto b = BatchArg(info, "nft.apply");
	auto *w = new ApplyWorker(info.Env(), std::move(b));
	w->Queue();
	return w->Promise();
}

Napi::Value NftDump(const Napi::CallbackInfo &info)
{
	std::string fam = plexd::ArgString(info, 0, "nft.dump", "family");
	std::string table = plexd::ArgString(info, 1, "nft.dump", "table");
	uint8_t f;
	try {
		f = FamilyOf(fam);
	} catch (const BadArg &e) {
		ThrowError(info.Env(), EINVAL, "nft.dump", "", e.what);
	}
	if (table.empty() || table.size() >= NFT_NAME_MAX)
		ThrowError(info.Env(), EINVAL, "nft.dump", table, "bad table name");
	auto *w = new DumpWorker(info.Env(), f, table);
	w->Queue();
	return w->Promise();
}

Napi::Value NftBuildBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	auto b = BatchArg(info, "nft.build");
	if (info.Length() < 2 || !info[1].IsNumber())
		ThrowError(env, EINVAL, "nft.build", "", "seq must be a number");
	uint32_t seq = info[1].As<Napi::Number>().Uint32Value();
	nft_batch cb = b->Get();
	nft_built built;
	int r = nft_build_batch(&cb, seq, &built);
	if (r < 0)
		ThrowError(env, r, "nft.build", std::string(FamilyName(b->family)) + " " + b->table);
	Napi::Array out = Napi::Array::New(env, built.nmsgs);
	for (uint32_t i = 0; i < built.nmsgs; i++) {
		size_t end = i + 1 < built.nmsgs ? built.msg_off[i + 1] : built.len;
		const nlmsghdr *h = reinterpret_cast<const nlmsghdr *>(built.buf + built.msg_off[i]);
		(void)end;
		out.Set(i, plexd::CopyBytes(env, h, h->nlmsg_len));
	}
	nft_built_free(&built);
	return out;
}

// Pure: parse raw nf_tables messages (as a dump would receive them) into the dump shape.
// Exists for tests and fuzzing; malformed input rejects with EBADMSG, never crashes.
Napi::Value NftParseDump(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsArray())
		ThrowError(env, EINVAL, "nft.parse", "", "messages must be an array of Uint8Array");
	Napi::Array msgs = info[0].As<Napi::Array>();
	Dump d;
	nft_dump_cb cb = d.Sink();
	for (uint32_t i = 0; i < msgs.Length(); i++) {
		Napi::Value v = msgs.Get(i);
		if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
			ThrowError(env, EINVAL, "nft.parse", "", "messages must be Uint8Arrays");
		Napi::Uint8Array a = v.As<Napi::Uint8Array>();
		// Copy: the parser reads aligned headers, a view into a larger buffer may not be.
		std::vector<uint8_t> buf(a.Data(), a.Data() + a.ByteLength());
		int r = nft_parse_buf(buf.data(), buf.size(), &cb);
		if (r < 0)
			ThrowError(env, r, "nft.parse", "message " + std::to_string(i));
	}
	return d.ToJs(env);
}

} // namespace

void InitNft(Napi::Env env, Napi::Object exports)
{
	exports.Set("nftApply", Napi::Function::New(env, NftApply, "nftApply"));
	exports.Set("nftDump", Napi::Function::New(env, NftDump, "nftDump"));
	exports.Set("nftBuildBatch", Napi::Function::New(env, NftBuildBatch, "nftBuildBatch"));
	exports.Set("nftParseDump", Napi::Function::New(env, NftParseDump, "nftParseDump"));
}
