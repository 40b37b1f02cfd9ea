// binding_wg.cc — wgGetDevice/wgSetDevice (Promises) and the pure wgBuildSet/wgParseGet.
#include "binding.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <arpa/inet.h>
#include <net/if.h>
#include <linux/genetlink.h>

#include "wg.h"

namespace {

using plexd::ThrowError;

// RAII owner of a wg_device's arrays.
struct Device {
	struct wg_device d;
	Device() { memset(&d, 0, sizeof(d)); }
	~Device() { wg_device_free(&d); }
	Device(const Device &) = delete;
	Device &operator=(const Device &) = delete;
};

void Key(Napi::Env env, Napi::Value v, uint8_t out[32], const char *op, const std::string &obj,
	 const char *what)
{
	if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
	    v.As<Napi::Uint8Array>().ByteLength() != 32)
		ThrowError(env, EINVAL, op, obj, std::string(what) + " must be a 32-byte Uint8Array");
	memcpy(out, v.As<Napi::Uint8Array>().Data(), 32);
}

uint32_t U32(Napi::Env env, Napi::Value v, double max, const char *op, const std::string &obj,
	     const char *what)
{
	double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
	if (d < 0 || d > max || d != (double)(uint32_t)d)
		ThrowError(env, EINVAL, op, obj, std::string(what) + " out of range");
	return (uint32_t)d;
}

bool Flag(Napi::Object o, const char *k) { return o.Get(k).ToBoolean().Value(); }

// "1.2.3.4:51820" or "[fd00::1]:51820" (optionally "[fe80::1%eth0]:51820").
bool ParseEndpoint(const std::string &s, struct wg_peer *p)
{
	std::string host, port;
	if (!s.empty() && s[0] == '[') {
		size_t close = s.find(']');
		if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
			return false;
		host = s.substr(1, close - 1);
		port = s.substr(close + 2);
	} else {
		size_t colon = s.rfind(':');
		if (colon == std::string::npos || s.find(':') != colon)
			return false;
		host = s.substr(0, colon);
		port = s.substr(colon + 1);
	}
	if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
		return false;
	unsigned long pn = strtoul(port.c_str(), nullptr, 10);
	if (pn > 65535)
		return false;
	if (s[0] == '[') {
		uint32_t scope = 0;
		size_t pct = host.find('%');
		if (pct != std::string::npos) {
			std::string z = host.substr(pct + 1);
			host = host.substr(0, pct);
			if (!z.empty() && z.find_first_not_of("0123456789") == std::string::npos)
				scope = (uint32_t)strtoul(z.c_str(), nullptr, 10);
			else if (!(scope = if_nametoindex(z.c_str())))
				return false;
		}
		struct sockaddr_in6 &a = p->endpoint.addr6;
		if (inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) != 1)
			return false;
		a.sin6_family = AF_INET6;
		a.sin6_port = htons((uint16_t)pn);
		a.sin6_scope_id = scope;
		return true;
	}
	struct sockaddr_in &a = p->endpoint.addr4;
	if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1)
		return false;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)pn);
	return true;
}

std::string FormatEndpoint(const struct wg_peer &p)
{
	if (p.endpoint.addr.sa_family == AF_INET)
		return plexd::FormatIp(AF_INET, &p.endpoint.addr4.sin_addr) + ":" +
		       std::to_string(ntohs(p.endpoint.addr4.sin_port));
	if (p.endpoint.addr.sa_family == AF_INET6) {
		std::string h = plexd::FormatIp(AF_INET6, &p.endpoint.addr6.sin6_addr);
		if (p.endpoint.addr6.sin6_scope_id)
			h += "%" + std::to_string(p.endpoint.addr6.sin6_scope_id);
		return "[" + h + "]:" + std::to_string(ntohs(p.endpoint.addr6.sin6_port));
	}
	return std::string();
}

bool ParseCidr(const std::string &s, struct wg_allowedip *a)
{
	size_t slash = s.find('/');
	std::string host = s.substr(0, slash);
	int fam = 0;
	if (!plexd::ParseIp(host, &fam, a->addr))
		return false;
	a->family = (uint16_t)fam;
	unsigned max = fam == AF_INET ? 32 : 128;
	if (slash == std::string::npos) {
		a->cidr = (uint8_t)max;
		return true;
	}
	std::string bits = s.substr(slash + 1);
	if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos)
		return false;
	unsigned long b = strtoul(bits.c_str(), nullptr, 10);
	if (b > max)
		return false;
	a->cidr = (uint8_t)b;
	return true;
}

// JS WgDeviceNative -> struct wg_device (throws EINVAL naming the bad field).
void FromJs(Napi::Env env, Napi::Object o, struct wg_device *d, const char *op)
{
	Napi::Value v = o.Get("ifname");
	std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
	if (name.empty() || name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos)
		ThrowError(env, EINVAL, op, name, "invalid interface name");
	memcpy(d->name, name.c_str(), name.size() + 1);
	if (!(v = o.Get("privateKey")).IsUndefined()) {
		Key(env, v, d->private_key, op, name, "privateKey");
		d->flags |= WGDEV_HAS_PRIVATE_KEY;
	}
	if (!(v = o.Get("listenPort")).IsUndefined()) {
		d->listen_port = (uint16_t)U32(env, v, 65535, op, name, "listenPort");
		d->flags |= WGDEV_HAS_LISTEN_PORT;
	}
	if (!(v = o.Get("fwmark")).IsUndefined()) {
		d->fwmark = U32(env, v, 4294967295.0, op, name, "fwmark");
		d->flags |= WGDEV_HAS_FWMARK;
	}
	if (Flag(o, "replacePeers"))
		d->flags |= WGDEV_REPLACE_PEERS;
	v = o.Get("peers");
	if (v.IsUndefined())
		return;
	if (!v.IsArray())
		ThrowError(env, EINVAL, op, name, "peers must be an array");
	Napi::Array peers = v.As<Napi::Array>();
	for (uint32_t i = 0; i < peers.Length(); i++) {
		Napi::Value pv = peers.Get(i);
		std::string where = name + " peers[" + std::to_string(i) + "]";
		if (!pv.IsObject())
			ThrowError(env, EINVAL, op, where, "peer must be an object");
		Napi::Object po = pv.As<Napi::Object>();
		struct wg_peer *p = wg_device_add_peer(d);
		if (!p)
			ThrowError(env, ENOMEM, op, where);
		Key(env, po.Get("publicKey"), p->public_key, op, where, "publicKey");
		p->flags |= WGP_HAS_PUBLIC_KEY;
		if (!(v = po.Get("presharedKey")).IsUndefined()) {
			Key(env, v, p->preshared_key, op, where, "presharedKey");
			p->flags |= WGP_HAS_PRESHARED_KEY;
		}
		if (!(v = po.Get("endpoint")).IsUndefined()) {
			std::string ep = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
			if (!ParseEndpoint(ep, p))
				ThrowError(env, EINVAL, op, where, "bad endpoint \"" + ep + "\"");
		}
		if (!(v = po.Get("persistentKeepalive")).IsUndefined()) {
			p->keepalive = (uint16_t)U32(env, v, 65535, op, where, "persistentKeepalive");
			p->flags |= WGP_HAS_KEEPALIVE;
		}
		if (Flag(po, "replaceAllowedIps"))
			p->flags |= WGP_REPLACE_ALLOWEDIPS;
		if (Flag(po, "remove"))
			p->flags |= WGP_REMOVE_ME;
		if (Flag(po, "updateOnly"))
			p->flags |= WGP_UPDATE_ONLY;
		if (!(v = po.Get("allowedIps")).IsUndefined()) {
			if (!v.IsArray())
				ThrowError(env, EINVAL, op, where, "allowedIps must be an array");
			Napi::Array ips = v.As<Napi::Array>();
			for (uint32_t j = 0; j < ips.Length(); j++) {
				Napi::Value iv = ips.Get(j);
				std::string c = iv.IsString() ? iv.As<Napi::String>().Utf8Value() : "";
				struct wg_allowedip *a = wg_peer_add_allowedip(p);
				if (!a)
					ThrowError(env, ENOMEM, op, where);
				if (!ParseCidr(c, a))
					ThrowError(env, EINVAL, op, where, "bad allowed IP \"" + c + "\"");
			}
		}
	}
}

Napi::Object ToJs(Napi::Env env, const struct wg_device &d)
{
	static const uint8_t zero[32] = {0};
	Napi::Object o = Napi::Object::New(env);
	o.Set("ifname", d.name);
	if (d.flags & WGDEV_HAS_PRIVATE_KEY)
		o.Set("privateKey", plexd::CopyBytes(env, d.private_key, 32));
	if (d.flags & WGDEV_HAS_PUBLIC_KEY)
		o.Set("publicKey", plexd::CopyBytes(env, d.public_key, 32));
	if (d.flags & WGDEV_HAS_LISTEN_PORT)
		o.Set("listenPort", d.listen_port);
	if (d.flags & WGDEV_HAS_FWMARK)
		o.Set("fwmark", Napi::Number::New(env, d.fwmark));
	Napi::Array peers = Napi::Array::New(env, d.n_peers);
	for (size_t i = 0; i < d.n_peers; i++) {
		const struct wg_peer &p = d.peers[i];
		Napi::Object po = Napi::Object::New(env);
		po.Set("publicKey", plexd::CopyBytes(env, p.public_key, 32));
		if ((p.flags & WGP_HAS_PRESHARED_KEY) && memcmp(p.preshared_key, zero, 32))
			po.Set("presharedKey", plexd::CopyBytes(env, p.preshared_key, 32));
		std::string ep = FormatEndpoint(p);
		if (!ep.empty())
			po.Set("endpoint", ep);
		if (p.flags & WGP_HAS_KEEPALIVE)
			po.Set("persistentKeepalive", p.keepalive);
		Napi::Array ips = Napi::Array::New(env, p.n_allowedips);
		for (size_t j = 0; j < p.n_allowedips; j++) {
			const struct wg_allowedip &a = p.allowedips[j];
			ips.Set(j, plexd::FormatIp(a.family, a.addr) + "/" + std::to_string(a.cidr));
		}
		po.Set("allowedIps", ips);
		if (p.flags & WGP_HAS_STATS) {
			po.Set("lastHandshakeSec", Napi::Number::New(env, (double)p.last_handshake_sec));
			po.Set("rxBytes", Napi::Number::New(env, (double)p.rx_bytes));
			po.Set("txBytes", Napi::Number::New(env, (double)p.tx_bytes));
		}
		peers.Set(i, po);
	}
	o.Set("peers", peers);
	return o;
}

Napi::Value WgGetDevice(const Napi::CallbackInfo &info)
{
	const char *op = "wg.get_device";
	std::string name = plexd::ArgString(info, 0, op, "ifname");
	if (name.empty() || name.size() >= IFNAMSIZ)
		ThrowError(info.Env(), EINVAL, op, name, "invalid interface name");
	auto dev = std::make_shared<Device>();
	return plexd::RunNl(
	    info.Env(), op, name, NETLINK_GENERIC,
	    [dev, name](struct nl_sock *s, struct nl_err *e, std::string &opname) {
		    uint16_t fam = 0; // resolved per call: an id can change when the module reloads
		    int stage = 0;
		    int r = wg_get_device(s, &fam, name.c_str(), &dev->d, e, &stage);
		    if (stage == 1 && r < 0)
			    opname = "wg.resolve_family";
		    return r;
	    },
	    [dev](Napi::Env env) -> Napi::Value { return ToJs(env, dev->d); });
}

Napi::Value WgSetDevice(const Napi::CallbackInfo &info)
{
	const char *op = "wg.set_device";
	Napi::Object o = plexd::ArgObject(info, 0, op, "device");
	auto dev = std::make_shared<Device>();
	FromJs(info.Env(), o, &dev->d, op);
	return plexd::RunNl(info.Env(), op, dev->d.name, NETLINK_GENERIC,
			    [dev](struct nl_sock *s, struct nl_err *e, std::string &opname) {
				    uint16_t fam = 0; // resolved per call: an id can change when the module reloads
				    int stage = 0;
				    int r = wg_set_device(s, &fam, &dev->d, e, &stage);
				    if (stage == 1 && r < 0)
					    opname = "wg.resolve_family";
				    return r;
			    });
}

Napi::Value WgBuildSet(const Napi::CallbackInfo &info)
{
	const char *op = "wg.build_set";
	Napi::Env env = info.Env();
	Napi::Object o = plexd::ArgObject(info, 0, op, "device");
	Device dev;
	FromJs(env, o, &dev.d, op);
	uint16_t family = (uint16_t)U32(env, info.Length() > 1 ? info[1] : env.Undefined(), 65535, op,
					dev.d.name, "familyId");
	uint32_t seq = U32(env, info.Length() > 2 ? info[2] : env.Undefined(), 4294967295.0, op,
			   dev.d.name, "seq");
	std::vector<uint8_t> buf(64 * 1024);
	size_t n = 0;
	int r;
	for (;;) {
		struct nl_msgbuf m = {buf.data(), buf.size(), 0};
		r = wg_build_set(&dev.d, family, seq, WG_MSG_MAX, &m, &n);
		if (r != -ENOBUFS)
			break;
		buf.resize(buf.size() * 2);
	}
	if (r < 0)
		ThrowError(env, r, op, dev.d.name);
	Napi::Array out = Napi::Array::New(env, n);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)(buf.data() + off);
		out.Set(i, plexd::CopyBytes(env, h, h->nlmsg_len));
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	return out;
}

Napi::Value WgParseGet(const Napi::CallbackInfo &info)
{
	const char *op = "wg.parse_get";
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsArray())
		ThrowError(env, EINVAL, op, "", "messages must be an array of Uint8Array");
	Device dev;
	plexd::ForEachNlMessage(env, op, info[0].As<Napi::Array>(),
				[&](const struct nlmsghdr *h) { return wg_parse_get_msg(&dev.d, h); });
	return ToJs(env, dev.d);
}

} // namespace

void InitWg(Napi::Env env, Napi::Object exports)
{
	exports.Set("wgGetDevice", plexd::PromiseFunction(env, "wgGetDevice", WgGetDevice));
	exports.Set("wgSetDevice", plexd::PromiseFunction(env, "wgSetDevice", WgSetDevice));
	exports.Set("wgBuildSet", Napi::Function::New(env, WgBuildSet, "wgBuildSet"));
	exports.Set("wgParseGet", Napi::Function::New(env, WgParseGet, "wgParseGet"));
}
