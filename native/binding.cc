// binding.cc — module init, the error class hand-over and the shared helpers of binding.h.
#include "binding.h"

#include <cerrno>
#include <cstring>
#include <vector>
#include <string.h>
#include <arpa/inet.h>

#ifndef PLEXD_VERSION
#define PLEXD_VERSION "0.1.0"
#endif

namespace plexd {
namespace {

// Per-env data: the JS error class handed in by setErrorClass.
struct AddonData {
	Napi::FunctionReference errorClass;
};

AddonData *Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

} // namespace

std::string ErrnoName(int err)
{
	if (err < 0)
		err = -err;
	const char *n = strerrorname_np(err);
	if (n)
		return n;
	return "E" + std::to_string(err);
}

Napi::Object MakeError(Napi::Env env, int err, const std::string &op, const std::string &object,
		       const std::string &detail)
{
	if (err < 0)
		err = -err;
	std::string code = ErrnoName(err);
	std::string message = op;
	if (!object.empty())
		message += " " + object;
	message += ": ";
	message += strerror(err);
	message += " (" + code + ")";
	if (!detail.empty())
		message += ": " + detail;

	Napi::Object fields = Napi::Object::New(env);
	fields.Set("code", code);
	fields.Set("errno", Napi::Number::New(env, err));
	fields.Set("op", op);
	fields.Set("object", object);
	if (!detail.empty())
		fields.Set("detail", detail);

	AddonData *d = Data(env);
	if (d && !d->errorClass.IsEmpty()) {
		// new NativeError(message, { code, errno, op, object, detail })
		return d->errorClass.New({Napi::String::New(env, message), fields});
	}
	// Before setErrorClass: a plain Error carrying the same fields, so nothing is lost.
	Napi::Object e = Napi::Error::New(env, message).Value();
	e.Set("name", "NativeError");
	for (const char *k : {"code", "errno", "op", "object", "detail"})
		if (fields.Has(k))
			e.Set(k, fields.Get(k));
	return e;
}

void ThrowError(Napi::Env env, int err, const std::string &op, const std::string &object,
		const std::string &detail)
{
	throw Napi::Error(env, MakeError(env, err, op, object, detail));
}

std::string ArgString(const Napi::CallbackInfo &info, size_t i, const char *op, const char *what)
{
	if (info.Length() <= i || !info[i].IsString())
		ThrowError(info.Env(), EINVAL, op, "", std::string(what) + " must be a string");
	return info[i].As<Napi::String>().Utf8Value();
}

Napi::Object ArgObject(const Napi::CallbackInfo &info, size_t i, const char *op, const char *what)
{
	if (info.Length() <= i || !info[i].IsObject())
		ThrowError(info.Env(), EINVAL, op, "", std::string(what) + " must be an object");
	return info[i].As<Napi::Object>();
}

bool ParseIp(const std::string &text, int *family, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, text.c_str(), out) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text.c_str(), out) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

std::string FormatIp(int family, const void *addr)
{
	char b[INET6_ADDRSTRLEN];
	if (!inet_ntop(family, addr, b, sizeof(b)))
		return std::string();
	return b;
}

Napi::Uint8Array CopyBytes(Napi::Env env, const void *data, size_t len)
{
	Napi::Uint8Array a = Napi::Uint8Array::New(env, len);
	if (len)
		memcpy(a.Data(), data, len);
	return a;
}

void ForEachNlMessage(Napi::Env env, const char *op, Napi::Array msgs,
		      const std::function<int(const struct nlmsghdr *)> &parse)
{
	for (uint32_t i = 0; i < msgs.Length(); i++) {
		Napi::Value v = msgs.Get(i);
		std::string where = "messages[" + std::to_string(i) + "]";
		if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
			ThrowError(env, EINVAL, op, where, "not a Uint8Array");
		Napi::Uint8Array a = v.As<Napi::Uint8Array>();
		// Aligned private copy: the JS view may start at any byte offset.
		std::vector<uint64_t> copy((a.ByteLength() + 7) / 8 + 1);
		memcpy(copy.data(), a.Data(), a.ByteLength());
		size_t left = a.ByteLength();
		const struct nlmsghdr *h = (const struct nlmsghdr *)copy.data();
		if (left > 0 && !NLMSG_OK(h, left))
			ThrowError(env, EBADMSG, op, where, "truncated netlink message");
		for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
					ThrowError(env, EBADMSG, op, where, "short error message");
				int e = *(const int *)NLMSG_DATA(h);
				if (e)
					ThrowError(env, e, op, where, "kernel error in reply");
				continue;
			}
			if (h->nlmsg_type < NLMSG_MIN_TYPE)
				continue; // DONE, NOOP, OVERRUN
			int r = parse(h);
			if (r < 0)
				ThrowError(env, r, op, where);
		}
		if (left >= sizeof(struct nlmsghdr))
			ThrowError(env, EBADMSG, op, where, "trailing bytes after the last message");
	}
}

PromiseWorker::PromiseWorker(Napi::Env env, std::string op, std::string object)
    : Napi::AsyncWorker(env), op_(std::move(op)), object_(std::move(object)),
      deferred_(Napi::Promise::Deferred::New(env))
{
}

void PromiseWorker::Fail(int err, const std::string &detail)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		err = EIO;
	err_ = err;
	detail_ = detail;
}

Napi::Value PromiseWorker::Resolve(Napi::Env env) { return env.Undefined(); }

void PromiseWorker::OnOK()
{
	Napi::Env env = Env();
	if (err_) {
		deferred_.Reject(MakeError(env, err_, op_, object_, detail_));
		return;
	}
	try {
		deferred_.Resolve(Resolve(env));
	} catch (const Napi::Error &e) {
		deferred_.Reject(e.Value());
	}
}

void PromiseWorker::OnError(const Napi::Error &e)
{
	// Only reached through SetError (not used by our workers) or a C++ exception in Execute.
	deferred_.Reject(MakeError(Env(), EIO, op_, object_, e.Message()));
}

NlWorker::NlWorker(Napi::Env env, std::string op, std::string object, int protocol, Exec exec,
		   Done done)
    : PromiseWorker(env, std::move(op), std::move(object)), protocol_(protocol),
      exec_(std::move(exec)), done_(std::move(done))
{
}

void NlWorker::Execute()
{
	struct nl_sock s;
	struct nl_err e;
	e.err = 0;
	e.msg[0] = '\0';
	int r = nl_open(&s, protocol_);
	if (r < 0) {
		op_ = "nl.open";
		Fail(r);
		return;
	}
	r = exec_(&s, &e, op_);
	nl_close(&s);
	if (r < 0)
		Fail(r, e.msg);
}

Napi::Value NlWorker::Resolve(Napi::Env env) { return done_ ? done_(env) : env.Undefined(); }

Napi::Function PromiseFunction(Napi::Env env, const char *name,
			       Napi::Value (*cb)(const Napi::CallbackInfo &))
{
	return Napi::Function::New(
	    env,
	    [cb](const Napi::CallbackInfo &info) -> Napi::Value {
		    try {
			    return cb(info);
		    } catch (const Napi::Error &e) {
			    auto d = Napi::Promise::Deferred::New(info.Env());
			    d.Reject(e.Value());
			    return d.Promise();
		    }
	    },
	    name);
}

Napi::Promise RunNl(Napi::Env env, std::string op, std::string object, int protocol,
		    NlWorker::Exec exec, NlWorker::Done done)
{
	auto *w = new NlWorker(env, std::move(op), std::move(object), protocol, std::move(exec),
			       std::move(done));
	Napi::Promise p = w->Promise();
	w->Queue();
	return p;
}

} // namespace plexd

namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsFunction())
		plexd::ThrowError(env, EINVAL, "addon.set_error_class", "", "expected a class");
	auto *d = env.GetInstanceData<plexd::AddonData>();
	d->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
	return env.Undefined();
}

Napi::Value Version(const Napi::CallbackInfo &info)
{
	return Napi::String::New(info.Env(), PLEXD_VERSION);
}

// Test hook: nl_parse_attrs over arbitrary bytes (fuzzed from TS). Returns [type, len] pairs
// of the attributes kept in tb, or throws EINVAL on a malformed stream.
Napi::Value NlParseAttrs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "nl.parse_attrs";
	if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber())
		plexd::ThrowError(env, EINVAL, op, "", "expected (Uint8Array, max)");
	Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
	int max = info[1].As<Napi::Number>().Int32Value();
	if (max < 0 || max > 1024)
		plexd::ThrowError(env, EINVAL, op, "", "max out of range");
	std::vector<uint32_t> copy(a.ByteLength() / 4 + 1);
	memcpy(copy.data(), a.Data(), a.ByteLength());
	std::vector<const struct nlattr *> tb(max + 1);
	int r = nl_parse_attrs(copy.data(), a.ByteLength(), tb.data(), max);
	if (r < 0)
		plexd::ThrowError(env, r, op, "");
	Napi::Array out = Napi::Array::New(env);
	uint32_t k = 0;
	for (int i = 0; i <= max; i++) {
		if (!tb[i])
			continue;
		Napi::Array pair = Napi::Array::New(env, 2);
		pair.Set(0u, i);
		pair.Set(1u, Napi::Number::New(env, (double)nl_attr_len(tb[i])));
		out.Set(k++, pair);
	}
	return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	env.SetInstanceData(new plexd::AddonData());
	exports.Set("version", Napi::Function::New(env, Version, "version"));
	exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
	exports.Set("_nlParseAttrs", Napi::Function::New(env, NlParseAttrs, "_nlParseAttrs"));
	InitRtnl(env, exports);
	InitWg(env, exports);
	InitSock(env, exports);
	InitNft(env, exports);
	InitNftMon(env, exports);
	InitRaw(env, exports);
	return exports;
}

} // namespace

NODE_API_MODULE(plexd, Init)
