// binding.h — shared helpers of the N-API layer (binding.cc, binding_rtnl.cc, binding_wg.cc,
// binding_sock.cc, binding_nft.cc). node-addon-api with C++ exceptions, NAPI_VERSION 8.
//
// Rules for every binding file:
//  - anything that talks to the kernel runs in a plexd::PromiseWorker (off the JS thread);
//  - failures become instances of the TS class handed in by setErrorClass (errors.ts
//    NativeError: name, code = errno name, errno, op, object) via plexd::MakeError/ThrowError;
//  - never call uv_* (crash stubs in Bun).
#ifndef PLEXD_BINDING_H
#define PLEXD_BINDING_H

#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>

#include "nl.h"

// Defined in binding_nft.cc (nftables engineer); called from the module init in binding.cc.
void InitNft(Napi::Env env, Napi::Object exports);
// Defined in binding_nftmon.cc (policy engineer): nftMonitor, nftGetGen, nftListTables.
void InitNftMon(Napi::Env env, Napi::Object exports);
// Per-family initialisers in this addon.
void InitRtnl(Napi::Env env, Napi::Object exports);
void InitWg(Napi::Env env, Napi::Object exports);
void InitSock(Napi::Env env, Napi::Object exports);
// Defined in binding_raw.cc (NAT traversal): raw UDP socket for STUN from the WireGuard port.
void InitRaw(Napi::Env env, Napi::Object exports);

namespace plexd {

// "EEXIST" for 17 etc.; "E<n>" when the C library has no name.
std::string ErrnoName(int err);

// A NativeError instance (or a plain Error with the same fields before setErrorClass).
// err is a positive errno (a negative one is accepted and flipped). detail is the kernel's
// extended-ack message or any other extra text; may be empty.
Napi::Object MakeError(Napi::Env env, int err, const std::string &op, const std::string &object,
		       const std::string &detail = std::string());
// Throws MakeError(...) as a JS exception (C++ exception under NODE_ADDON_API_CPP_EXCEPTIONS).
[[noreturn]] void ThrowError(Napi::Env env, int err, const std::string &op,
			     const std::string &object, const std::string &detail = std::string());

// Argument helpers: throw a NativeError with code EINVAL naming op and the bad argument.
std::string ArgString(const Napi::CallbackInfo &info, size_t i, const char *op, const char *what);
Napi::Object ArgObject(const Napi::CallbackInfo &info, size_t i, const char *op, const char *what);

// Text <-> binary addresses. ParseIp: family gets AF_INET/AF_INET6; false when not an address.
bool ParseIp(const std::string &text, int *family, uint8_t out[16]);
std::string FormatIp(int family, const void *addr);

// Copies bytes into a fresh Uint8Array (owning its own ArrayBuffer).
Napi::Uint8Array CopyBytes(Napi::Env env, const void *data, size_t len);

// Pure-parser test hooks (wgParseGet, _rtnlParse): walks raw netlink replies given as an array
// of Uint8Array with the framing checks nl_recv applies (truncation, NLMSG_ERROR, trailing
// bytes; DONE/NOOP/OVERRUN skipped) and calls `parse` for each data message; a negative return
// or a framing fault throws NativeError with `op` and "messages[i]" as the object.
void ForEachNlMessage(Napi::Env env, const char *op, Napi::Array msgs,
		      const std::function<int(const struct nlmsghdr *)> &parse);

// Base class for kernel calls: Execute() runs on a worker thread and reports failure with
// Fail(); Resolve() builds the JS result on the JS thread. Usage:
//   auto *w = new MyWorker(info.Env(), ...); w->Queue(); return w->Promise();
class PromiseWorker : public Napi::AsyncWorker {
      public:
	PromiseWorker(Napi::Env env, std::string op, std::string object);
	Napi::Promise Promise() { return deferred_.Promise(); }

      protected:
	// Call from Execute(): err = positive or negative errno, detail = ext-ack text.
	void Fail(int err, const std::string &detail = std::string());
	bool Failed() const { return err_ != 0; }
	// Override to resolve with a value; default undefined.
	virtual Napi::Value Resolve(Napi::Env env);

	std::string op_;
	std::string object_;

      private:
	void OnOK() override;
	void OnError(const Napi::Error &e) override;
	Napi::Promise::Deferred deferred_;
	int err_ = 0;
	std::string detail_;
};

// The common case: open a netlink socket of `protocol` on the worker thread, run exec, close.
// exec returns 0 or -errno (nl_err filled by the nl_* calls) and may rename the op (e.g.
// "wg.resolve_family" when the failing step was the family lookup). done builds the result
// on the JS thread from whatever exec stored (capture a shared_ptr).
class NlWorker : public PromiseWorker {
      public:
	using Exec = std::function<int(struct nl_sock *, struct nl_err *, std::string &op)>;
	using Done = std::function<Napi::Value(Napi::Env)>;
	NlWorker(Napi::Env env, std::string op, std::string object, int protocol, Exec exec,
		 Done done = nullptr);

      protected:
	void Execute() override;
	Napi::Value Resolve(Napi::Env env) override;

      private:
	int protocol_;
	Exec exec_;
	Done done_;
};

// A JS function for a Promise-returning call: argument errors thrown synchronously by cb
// (ThrowError) become a rejected Promise, so callers see one failure channel.
Napi::Function PromiseFunction(Napi::Env env, const char *name,
			       Napi::Value (*cb)(const Napi::CallbackInfo &));

// Queues an NlWorker and returns its promise.
Napi::Promise RunNl(Napi::Env env, std::string op, std::string object, int protocol,
		    NlWorker::Exec exec, NlWorker::Done done = nullptr);

} // namespace plexd

#endif
