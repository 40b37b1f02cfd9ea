// binding_raw.cc — raw IPv4/UDP socket for STUN from the WireGuard listen port (stun_raw.h,
// lifecycle.md §5.1): rawUdpOpen / rawUdpSend / rawUdpRecv / rawUdpClose / routeSource, and the
// pure test hook _rawUdpBuild.
//
// A handle is an External owning a shared_ptr to the socket: workers hold their own reference,
// so rawUdpClose (or GC) never closes an fd another thread is still polling — close signals an
// eventfd that wakes a pending receive, and the fd is closed when the last reference goes.
#include "binding.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "stun_raw.h"

namespace {

using plexd::PromiseWorker;
using plexd::ThrowError;

struct RawSock {
	int fd = -1;
	int wake = -1;
	uint16_t port = 0;
	std::atomic<bool> closed{false};
	~RawSock()
	{
		if (fd >= 0)
			close(fd);
		if (wake >= 0)
			close(wake);
	}
	void Shutdown()
	{
		if (closed.exchange(true))
			return;
		uint64_t one = 1;
		ssize_t r = write(wake, &one, sizeof(one));
		(void)r; // eventfd write cannot fail short of overflow
	}
};

struct Holder {
	std::shared_ptr<RawSock> sock;
};

std::string PortText(uint16_t p) { return std::to_string(p); }

uint16_t ArgPort(const Napi::CallbackInfo &info, size_t i, const char *op, const char *what, bool allowZero = false)
{
	if (info.Length() <= i || !info[i].IsNumber())
		ThrowError(info.Env(), EINVAL, op, "", std::string(what) + " must be a number");
	double d = info[i].As<Napi::Number>().DoubleValue();
	if (!(d >= (allowZero ? 0 : 1) && d <= 65535) || d != (double)(int)d)
		ThrowError(info.Env(), EINVAL, op, "", std::string(what) + " must be an integer port");
	return (uint16_t)d;
}

uint32_t ArgV4(const Napi::CallbackInfo &info, size_t i, const char *op, const char *what)
{
	std::string s = plexd::ArgString(info, i, op, what);
	int fam = 0;
	uint8_t b[16];
	if (!plexd::ParseIp(s, &fam, b) || fam != AF_INET)
		ThrowError(info.Env(), EINVAL, op, s, std::string(what) + " must be an IPv4 address");
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

std::vector<uint8_t> ArgBytes(const Napi::CallbackInfo &info, size_t i, const char *op, const char *what)
{
	if (info.Length() <= i || !info[i].IsTypedArray() ||
	    info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
		ThrowError(info.Env(), EINVAL, op, "", std::string(what) + " must be a Uint8Array");
	Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
	if (a.ByteLength() > STUN_RAW_MAX_PAYLOAD)
		ThrowError(info.Env(), EMSGSIZE, op, "", std::string(what) + " too large");
	return std::vector<uint8_t>(a.Data(), a.Data() + a.ByteLength());
}

std::shared_ptr<RawSock> ArgSock(const Napi::CallbackInfo &info, const char *op)
{
	if (info.Length() < 1 || !info[0].IsExternal())
		ThrowError(info.Env(), EINVAL, op, "", "handle must come from rawUdpOpen");
	Holder *h = info[0].As<Napi::External<Holder>>().Data();
	if (!h || !h->sock || h->sock->closed)
		ThrowError(info.Env(), EBADF, op, "", "handle is closed");
	return h->sock;
}

std::string V4Text(uint32_t a)
{
	uint8_t b[4] = {(uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a};
	return plexd::FormatIp(AF_INET, b);
}

class OpenWorker : public PromiseWorker {
      public:
	OpenWorker(Napi::Env env, uint16_t port) : PromiseWorker(env, "raw.open", "udp port " + PortText(port)), port_(port) {}

      protected:
	void Execute() override
	{
		sock_ = std::make_shared<RawSock>();
		sock_->port = port_;
		sock_->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (sock_->wake < 0) {
			Fail(errno);
			return;
		}
		int r = stun_raw_open(port_, &sock_->fd);
		if (r < 0)
			Fail(r);
	}
	Napi::Value Resolve(Napi::Env env) override
	{
		return Napi::External<Holder>::New(env, new Holder{sock_}, [](Napi::Env, Holder *h) { delete h; });
	}

      private:
	uint16_t port_;
	std::shared_ptr<RawSock> sock_;
};

class SendWorker : public PromiseWorker {
      public:
	SendWorker(Napi::Env env, std::shared_ptr<RawSock> s, uint16_t sport, uint32_t dst, uint16_t dport,
		   std::vector<uint8_t> payload)
	    : PromiseWorker(env, "raw.send", V4Text(dst) + ":" + PortText(dport)), s_(std::move(s)), sport_(sport),
	      dst_(dst), dport_(dport), payload_(std::move(payload))
	{
	}

      protected:
	void Execute() override
	{
		int r = stun_raw_send(s_->fd, sport_, dst_, dport_, payload_.data(), payload_.size());
		if (r < 0)
			Fail(r);
	}

      private:
	std::shared_ptr<RawSock> s_;
	uint16_t sport_;
	uint32_t dst_;
	uint16_t dport_;
	std::vector<uint8_t> payload_;
};

class RecvWorker : public PromiseWorker {
      public:
	RecvWorker(Napi::Env env, std::shared_ptr<RawSock> s, int timeout)
	    : PromiseWorker(env, "raw.recv", "udp port " + PortText(s->port)), s_(std::move(s)), timeout_(timeout),
	      buf_(STUN_RAW_MAX_PAYLOAD)
	{
	}

      protected:
	void Execute() override
	{
		int r = stun_raw_recv(s_->fd, s_->wake, timeout_, s_->port, &src_, &sport_, buf_.data(), buf_.size());
		if (r < 0)
			Fail(r);
		else
			len_ = r;
	}
	Napi::Value Resolve(Napi::Env env) override
	{
		if (len_ == 0)
			return env.Null();
		Napi::Object o = Napi::Object::New(env);
		o.Set("srcIp", V4Text(src_));
		o.Set("srcPort", Napi::Number::New(env, sport_));
		o.Set("payload", plexd::CopyBytes(env, buf_.data(), (size_t)len_));
		return o;
	}

      private:
	std::shared_ptr<RawSock> s_;
	int timeout_;
	std::vector<uint8_t> buf_;
	int len_ = 0;
	uint32_t src_ = 0;
	uint16_t sport_ = 0;
};

class RouteWorker : public PromiseWorker {
      public:
	RouteWorker(Napi::Env env, uint32_t dst) : PromiseWorker(env, "raw.route_source", V4Text(dst)), dst_(dst) {}

      protected:
	void Execute() override
	{
		int r = stun_raw_route_source(dst_, &src_);
		if (r < 0)
			Fail(r);
	}
	Napi::Value Resolve(Napi::Env env) override { return Napi::String::New(env, V4Text(src_)); }

      private:
	uint32_t dst_;
	uint32_t src_ = 0;
};

template <class W> Napi::Value Queue(W *w)
{
	Napi::Promise p = w->Promise();
	w->Queue();
	return p;
}

Napi::Value RawUdpOpen(const Napi::CallbackInfo &info)
{
	uint16_t port = ArgPort(info, 0, "raw.open", "listenPort");
	return Queue(new OpenWorker(info.Env(), port));
}

Napi::Value RawUdpSend(const Napi::CallbackInfo &info)
{
	const char *op = "raw.send";
	auto s = ArgSock(info, op);
	uint16_t sport = ArgPort(info, 1, op, "srcPort");
	uint32_t dst = ArgV4(info, 2, op, "dstIp");
	uint16_t dport = ArgPort(info, 3, op, "dstPort");
	auto payload = ArgBytes(info, 4, op, "payload");
	return Queue(new SendWorker(info.Env(), std::move(s), sport, dst, dport, std::move(payload)));
}

Napi::Value RawUdpRecv(const Napi::CallbackInfo &info)
{
	const char *op = "raw.recv";
	auto s = ArgSock(info, op);
	if (info.Length() < 2 || !info[1].IsNumber())
		ThrowError(info.Env(), EINVAL, op, "", "timeoutMs must be a number");
	double t = info[1].As<Napi::Number>().DoubleValue();
	// Bounded: a receive occupies a worker thread for its whole wait.
	if (!(t >= 0 && t <= 60000))
		ThrowError(info.Env(), EINVAL, op, "", "timeoutMs must be in 0..60000");
	return Queue(new RecvWorker(info.Env(), std::move(s), (int)t));
}

Napi::Value RawUdpClose(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsExternal())
		ThrowError(env, EINVAL, "raw.close", "", "handle must come from rawUdpOpen");
	Holder *h = info[0].As<Napi::External<Holder>>().Data();
	if (h && h->sock) {
		h->sock->Shutdown();
		h->sock.reset(); // fd closes when the last worker holding it finishes
	}
	return env.Undefined();
}

Napi::Value RouteSource(const Napi::CallbackInfo &info)
{
	uint32_t dst = ArgV4(info, 0, "raw.route_source", "dstIp");
	return Queue(new RouteWorker(info.Env(), dst));
}

// Test hook (pure): the UDP datagram stun_raw_send would write for these addresses.
Napi::Value RawUdpBuild(const Napi::CallbackInfo &info)
{
	const char *op = "raw.build";
	uint32_t src = ArgV4(info, 0, op, "srcIp");
	uint16_t sport = ArgPort(info, 1, op, "srcPort");
	uint32_t dst = ArgV4(info, 2, op, "dstIp");
	uint16_t dport = ArgPort(info, 3, op, "dstPort");
	auto payload = ArgBytes(info, 4, op, "payload");
	std::vector<uint8_t> out(8 + payload.size());
	int n = stun_raw_build(src, sport, dst, dport, payload.data(), payload.size(), out.data(), out.size());
	if (n < 0)
		ThrowError(info.Env(), n, op, "");
	return plexd::CopyBytes(info.Env(), out.data(), (size_t)n);
}

} // namespace

void InitRaw(Napi::Env env, Napi::Object exports)
{
	exports.Set("rawUdpOpen", plexd::PromiseFunction(env, "rawUdpOpen", RawUdpOpen));
	exports.Set("rawUdpSend", plexd::PromiseFunction(env, "rawUdpSend", RawUdpSend));
	exports.Set("rawUdpRecv", plexd::PromiseFunction(env, "rawUdpRecv", RawUdpRecv));
	exports.Set("rawUdpClose", Napi::Function::New(env, RawUdpClose, "rawUdpClose"));
	exports.Set("routeSource", plexd::PromiseFunction(env, "routeSource", RouteSource));
	exports.Set("_rawUdpBuild", Napi::Function::New(env, RawUdpBuild, "_rawUdpBuild"));
}
