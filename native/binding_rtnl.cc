// binding_rtnl.cc — linkList/linkAdd/linkDel/linkSet, addr*, route* (rtnl.c) as Promises,
// plus the pure _rtnlParse test hook over the same per-message decoders.
#include "binding.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <net/if.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include "rtnl.h"

namespace {

using plexd::ThrowError;

// Owns a malloc'ed C array returned by the rtnl_*_list functions.
template <typename T> struct CList {
	T *items = nullptr;
	size_t n = 0;
	~CList() { free(items); }
};

std::string IfName(const Napi::CallbackInfo &info, size_t i, const char *op)
{
	std::string name = plexd::ArgString(info, i, op, "ifname");
	if (name.empty() || name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos)
		ThrowError(info.Env(), EINVAL, op, name, "invalid interface name");
	return name;
}

// Resolves an interface name on the worker thread (if_nametoindex is an ioctl).
int IndexOf(const std::string &name)
{
	unsigned idx = if_nametoindex(name.c_str());
	if (!idx)
		return errno ? -errno : -ENODEV;
	return (int)idx;
}

// Record -> JS object, shared by the dumps and the _rtnlParse test hook.
Napi::Object LinkToJs(Napi::Env env, const struct rtnl_link &l)
{
	Napi::Object o = Napi::Object::New(env);
	o.Set("index", l.index);
	o.Set("name", l.name);
	o.Set("kind", l.kind);
	o.Set("mtu", Napi::Number::New(env, l.mtu));
	o.Set("up", Napi::Boolean::New(env, l.up != 0));
	return o;
}

Napi::Object AddrToJs(Napi::Env env, const struct rtnl_addr &r)
{
	Napi::Object o = Napi::Object::New(env);
	o.Set("ifindex", r.ifindex);
	o.Set("family", r.family == AF_INET ? 4 : 6);
	o.Set("address", plexd::FormatIp(r.family, r.addr));
	o.Set("prefixlen", r.prefixlen);
	return o;
}

Napi::Object RouteToJs(Napi::Env env, const struct rtnl_route &r)
{
	Napi::Object o = Napi::Object::New(env);
	o.Set("family", r.family == AF_INET ? 4 : 6);
	o.Set("dst", plexd::FormatIp(r.family, r.dst));
	o.Set("prefixlen", r.dst_len);
	o.Set("ifindex", r.oif);
	if (r.has_src)
		o.Set("src", plexd::FormatIp(r.family, r.src));
	if (r.has_gw)
		o.Set("gateway", plexd::FormatIp(r.family, r.gw));
	o.Set("table", Napi::Number::New(env, r.table));
	return o;
}

Napi::Value LinkList(const Napi::CallbackInfo &info)
{
	auto res = std::make_shared<CList<struct rtnl_link>>();
	return plexd::RunNl(
	    info.Env(), "rtnl.link_list", "", NETLINK_ROUTE,
	    [res](struct nl_sock *s, struct nl_err *e, std::string &) {
		    return rtnl_link_list(s, &res->items, &res->n, e);
	    },
	    [res](Napi::Env env) -> Napi::Value {
		    Napi::Array a = Napi::Array::New(env, res->n);
		    for (size_t i = 0; i < res->n; i++) {
			    a.Set(i, LinkToJs(env, res->items[i]));
		    }
		    return a;
	    });
}

Napi::Value LinkAdd(const Napi::CallbackInfo &info)
{
	const char *op = "rtnl.link_add";
	std::string name = IfName(info, 0, op);
	std::string kind = plexd::ArgString(info, 1, op, "kind");
	if (kind.empty() || kind.size() >= 32)
		ThrowError(info.Env(), EINVAL, op, name, "invalid link kind");
	return plexd::RunNl(info.Env(), op, name, NETLINK_ROUTE,
			    [name, kind](struct nl_sock *s, struct nl_err *e, std::string &) {
				    return rtnl_link_add(s, name.c_str(), kind.c_str(), e);
			    });
}

Napi::Value LinkDel(const Napi::CallbackInfo &info)
{
	const char *op = "rtnl.link_del";
	std::string name = IfName(info, 0, op);
	return plexd::RunNl(info.Env(), op, name, NETLINK_ROUTE,
			    [name](struct nl_sock *s, struct nl_err *e, std::string &) {
				    return rtnl_link_del(s, name.c_str(), e);
			    });
}

Napi::Value LinkSet(const Napi::CallbackInfo &info)
{
	const char *op = "rtnl.link_set";
	Napi::Env env = info.Env();
	std::string name = IfName(info, 0, op);
	Napi::Object opts = plexd::ArgObject(info, 1, op, "opts");
	int up = -1;
	uint32_t mtu = 0;
	Napi::Value v = opts.Get("up");
	if (!v.IsUndefined()) {
		if (!v.IsBoolean())
			ThrowError(env, EINVAL, op, name, "up must be a boolean");
		up = v.As<Napi::Boolean>().Value() ? 1 : 0;
	}
	v = opts.Get("mtu");
	if (!v.IsUndefined()) {
		double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
		if (d < 68 || d > 65535 || d != (double)(uint32_t)d)
			ThrowError(env, EINVAL, op, name, "mtu must be an integer in 68..65535");
		mtu = (uint32_t)d;
	}
	return plexd::RunNl(env, op, name, NETLINK_ROUTE,
			    [name, up, mtu](struct nl_sock *s, struct nl_err *e, std::string &) {
				    return rtnl_link_set(s, name.c_str(), up, mtu, e);
			    });
}

Napi::Value AddrList(const Napi::CallbackInfo &info)
{
	const char *op = "rtnl.addr_list";
	int ifindex = 0;
	if (info.Length() > 0 && !info[0].IsUndefined()) {
		if (!info[0].IsNumber() || info[0].As<Napi::Number>().Int32Value() < 0)
			ThrowError(info.Env(), EINVAL, op, "", "ifindex must be a non-negative integer");
		ifindex = info[0].As<Napi::Number>().Int32Value();
	}
	auto res = std::make_shared<CList<struct rtnl_addr>>();
	return plexd::RunNl(
	    info.Env(), op, ifindex ? std::to_string(ifindex) : "", NETLINK_ROUTE,
	    [res, ifindex](struct nl_sock *s, struct nl_err *e, std::string &) {
		    return rtnl_addr_list(s, ifindex, &res->items, &res->n, e);
	    },
	    [res](Napi::Env env) -> Napi::Value {
		    Napi::Array a = Napi::Array::New(env, res->n);
		    for (size_t i = 0; i < res->n; i++) {
			    a.Set(i, AddrToJs(env, res->items[i]));
		    }
		    return a;
	    });
}

Napi::Value AddrChange(const Napi::CallbackInfo &info, bool add)
{
	const char *op = add ? "rtnl.addr_add" : "rtnl.addr_del";
	Napi::Env env = info.Env();
	std::string name = IfName(info, 0, op);
	std::string text = plexd::ArgString(info, 1, op, "address");
	struct rtnl_addr a;
	memset(&a, 0, sizeof(a));
	if (!plexd::ParseIp(text, &a.family, a.addr))
		ThrowError(env, EINVAL, op, text, "not an IP address");
	if (info.Length() < 3 || !info[2].IsNumber())
		ThrowError(env, EINVAL, op, text, "prefixlen must be a number");
	int plen = info[2].As<Napi::Number>().Int32Value();
	if (plen < 0 || plen > (a.family == AF_INET ? 32 : 128))
		ThrowError(env, EINVAL, op, text, "prefixlen out of range");
	a.prefixlen = (uint8_t)plen;
	std::string object = name + " " + text + "/" + std::to_string(plen);
	return plexd::RunNl(env, op, object, NETLINK_ROUTE,
			    [name, a, add](struct nl_sock *s, struct nl_err *e, std::string &) mutable {
				    int idx = IndexOf(name);
				    if (idx < 0)
					    return idx;
				    a.ifindex = idx;
				    return rtnl_addr_change(s, add, &a, e);
			    });
}

Napi::Value AddrAdd(const Napi::CallbackInfo &info) { return AddrChange(info, true); }
Napi::Value AddrDel(const Napi::CallbackInfo &info) { return AddrChange(info, false); }

Napi::Value RouteList(const Napi::CallbackInfo &info)
{
	const char *op = "rtnl.route_list";
	uint32_t table = 0;
	if (info.Length() > 0 && !info[0].IsUndefined()) {
		double d = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
		if (d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d)
			ThrowError(info.Env(), EINVAL, op, "", "table must be a 32-bit unsigned integer");
		table = (uint32_t)d;
	}
	auto res = std::make_shared<CList<struct rtnl_route>>();
	return plexd::RunNl(
	    info.Env(), op, table ? "table " + std::to_string(table) : "", NETLINK_ROUTE,
	    [res, table](struct nl_sock *s, struct nl_err *e, std::string &) {
		    return rtnl_route_list(s, table, &res->items, &res->n, e);
	    },
	    [res](Napi::Env env) -> Napi::Value {
		    Napi::Array a = Napi::Array::New(env, res->n);
		    for (size_t i = 0; i < res->n; i++) {
			    a.Set(i, RouteToJs(env, res->items[i]));
		    }
		    return a;
	    });
}

Napi::Value RouteChange(const Napi::CallbackInfo &info, bool add)
{
	const char *op = add ? "rtnl.route_add" : "rtnl.route_del";
	Napi::Env env = info.Env();
	Napi::Object o = plexd::ArgObject(info, 0, op, "route");
	struct rtnl_route r;
	memset(&r, 0, sizeof(r));
	Napi::Value v = o.Get("dst");
	std::string dst = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
	if (!plexd::ParseIp(dst, &r.family, r.dst))
		ThrowError(env, EINVAL, op, dst, "dst must be an IP address");
	v = o.Get("prefixlen");
	int plen = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
	if (plen < 0 || plen > (r.family == AF_INET ? 32 : 128))
		ThrowError(env, EINVAL, op, dst, "prefixlen out of range");
	r.dst_len = (uint8_t)plen;
	v = o.Get("ifname");
	std::string ifname = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
	if (ifname.empty() || ifname.size() >= IFNAMSIZ)
		ThrowError(env, EINVAL, op, dst, "ifname must be an interface name");
	v = o.Get("src");
	if (add && !v.IsUndefined()) {
		int fam = 0;
		std::string src = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
		if (!plexd::ParseIp(src, &fam, r.src) || fam != r.family)
			ThrowError(env, EINVAL, op, dst, "src must be an address of the dst family");
		r.has_src = 1;
	}
	v = o.Get("table");
	if (!v.IsUndefined()) {
		double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
		if (d < 1 || d > 4294967295.0 || d != (double)(uint32_t)d)
			ThrowError(env, EINVAL, op, dst, "table must be an integer in 1..2^32-1");
		r.table = (uint32_t)d;
	}
	std::string object = dst + "/" + std::to_string(plen) + " dev " + ifname;
	if (r.table)
		object += " table " + std::to_string(r.table);
	return plexd::RunNl(env, op, object, NETLINK_ROUTE,
			    [ifname, r, add](struct nl_sock *s, struct nl_err *e, std::string &) mutable {
				    int idx = IndexOf(ifname);
				    if (idx < 0)
					    return idx;
				    r.oif = idx;
				    return rtnl_route_change(s, add, &r, e);
			    });
}

Napi::Value RouteAdd(const Napi::CallbackInfo &info) { return RouteChange(info, true); }
Napi::Value RouteDel(const Napi::CallbackInfo &info) { return RouteChange(info, false); }

// Test hook (fuzzed from TS, like wgParseGet): _rtnlParse(kind, messages, filter?) feeds raw
// dump replies to the same per-message decoders the link/addr/route dumps use (rtnl.c), with
// the framing checks nl_recv applies. filter = ifindex (addr) or table (route), 0 = all.
// Returns the records as linkList/addrList/routeList would; throws NativeError otherwise.
Napi::Value RtnlParse(const Napi::CallbackInfo &info)
{
	const char *op = "rtnl.parse";
	Napi::Env env = info.Env();
	std::string kind = plexd::ArgString(info, 0, op, "kind");
	if (kind != "link" && kind != "addr" && kind != "route")
		ThrowError(env, EINVAL, op, kind, "kind must be link, addr or route");
	if (info.Length() < 2 || !info[1].IsArray())
		ThrowError(env, EINVAL, op, kind, "messages must be an array of Uint8Array");
	double filter = 0;
	if (info.Length() > 2 && !info[2].IsUndefined()) {
		filter = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
		if (filter < 0 || filter > 2147483647.0 || filter != (double)(uint32_t)filter)
			ThrowError(env, EINVAL, op, kind, "filter must be a non-negative integer");
	}
	Napi::Array out = Napi::Array::New(env);
	uint32_t k = 0;
	plexd::ForEachNlMessage(env, op, info[1].As<Napi::Array>(), [&](const struct nlmsghdr *h) {
		int r;
		if (kind == "link") {
			struct rtnl_link l;
			if ((r = rtnl_link_parse(h, &l)) > 0)
				out.Set(k++, LinkToJs(env, l));
		} else if (kind == "addr") {
			struct rtnl_addr ad;
			if ((r = rtnl_addr_parse(h, (int)filter, &ad)) > 0)
				out.Set(k++, AddrToJs(env, ad));
		} else {
			struct rtnl_route rt;
			if ((r = rtnl_route_parse(h, (uint32_t)filter, &rt)) > 0)
				out.Set(k++, RouteToJs(env, rt));
		}
		return r;
	});
	return out;
}

} // namespace

void InitRtnl(Napi::Env env, Napi::Object exports)
{
	exports.Set("linkList", plexd::PromiseFunction(env, "linkList", LinkList));
	exports.Set("linkAdd", plexd::PromiseFunction(env, "linkAdd", LinkAdd));
	exports.Set("linkDel", plexd::PromiseFunction(env, "linkDel", LinkDel));
	exports.Set("linkSet", plexd::PromiseFunction(env, "linkSet", LinkSet));
	exports.Set("addrList", plexd::PromiseFunction(env, "addrList", AddrList));
	exports.Set("addrAdd", plexd::PromiseFunction(env, "addrAdd", AddrAdd));
	exports.Set("addrDel", plexd::PromiseFunction(env, "addrDel", AddrDel));
	exports.Set("routeList", plexd::PromiseFunction(env, "routeList", RouteList));
	exports.Set("routeAdd", plexd::PromiseFunction(env, "routeAdd", RouteAdd));
	exports.Set("routeDel", plexd::PromiseFunction(env, "routeDel", RouteDel));
	exports.Set("_rtnlParse", Napi::Function::New(env, RtnlParse, "_rtnlParse"));
}
