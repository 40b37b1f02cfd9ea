// binding_nftmon.cc — JS ↔ C for nft_monitor.c: nftMonitor, nftGetGen, nftListTables.
//
// nftMonitor(callback) starts a dedicated thread blocked in poll() on a NETLINK_NETFILTER
// socket subscribed to NFNLGRP_NFTABLES (plus an eventfd used to wake it for close()). Each
// recv() worth of notifications becomes one callback call with an array of events, delivered
// on the JS thread through a Napi::ThreadSafeFunction (never uv_*: crash stubs in Bun).
// Lost notifications (ENOBUFS on a full socket buffer) are reported as {type: "overflow"}:
// the caller must assume anything changed.
#include "binding.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

extern "C" {
#include "nft_monitor.h"
}

namespace {

const char *FamName(uint8_t f)
{
	switch (f) {
	case NFPROTO_INET: return "inet";
	case NFPROTO_IPV4: return "ip";
	case NFPROTO_IPV6: return "ip6";
	case NFPROTO_ARP: return "arp";
	case NFPROTO_BRIDGE: return "bridge";
	case NFPROTO_NETDEV: return "netdev";
	default: return "unspec";
	}
}

const char *MsgName(uint16_t m)
{
	switch (m) {
	case NFT_MSG_NEWTABLE: return "newtable";
	case NFT_MSG_DELTABLE: return "deltable";
	case NFT_MSG_NEWCHAIN: return "newchain";
	case NFT_MSG_DELCHAIN: return "delchain";
	case NFT_MSG_NEWRULE: return "newrule";
	case NFT_MSG_DELRULE: return "delrule";
	case NFT_MSG_NEWSET: return "newset";
	case NFT_MSG_DELSET: return "delset";
	case NFT_MSG_NEWSETELEM: return "newsetelem";
	case NFT_MSG_DELSETELEM: return "delsetelem";
	case NFT_MSG_NEWGEN: return "newgen";
	case NFT_MSG_NEWOBJ: return "newobj";
	case NFT_MSG_DELOBJ: return "delobj";
	case NFT_MSG_NEWFLOWTABLE: return "newflowtable";
	case NFT_MSG_DELFLOWTABLE: return "delflowtable";
	default: return "other";
	}
}

struct Ev {
	std::string type;
	std::string family;
	std::string table;
	uint32_t gen = 0, pid = 0;
	std::string proc;
	int err = 0;
};
using Batch = std::vector<Ev>;

struct Monitor;
void CallJs(Napi::Env env, Napi::Function cb, Monitor *ctx, Batch *data);
using Tsfn = Napi::TypedThreadSafeFunction<Monitor, Batch, CallJs>;

// Shared between the JS object, the thread and the tsfn; freed by the tsfn finalizer.
struct Monitor {
	Tsfn tsfn;
	std::thread thread;
	std::atomic<bool> closed{false};
	bool released = false;
	int wake = -1;
	struct nl_sock sock;
};

void CallJs(Napi::Env env, Napi::Function cb, Monitor *ctx, Batch *data)
{
	std::unique_ptr<Batch> b(data);
	if (!env || !cb || !b || ctx->closed.load())
		return;
	Napi::Array arr = Napi::Array::New(env, b->size());
	for (size_t i = 0; i < b->size(); i++) {
		const Ev &e = (*b)[i];
		Napi::Object o = Napi::Object::New(env);
		o.Set("type", e.type);
		if (e.type == "newgen") {
			o.Set("gen", e.gen);
			o.Set("pid", e.pid);
			o.Set("proc", e.proc);
		} else if (e.type == "overflow" || e.type == "error") {
			if (e.err)
				o.Set("code", plexd::ErrnoName(e.err));
		} else {
			o.Set("family", e.family);
			o.Set("table", e.table);
		}
		arr.Set((uint32_t)i, o);
	}
	try {
		cb.Call({arr});
	} catch (const Napi::Error &) {
		// A throwing listener must not take the monitor down; the exception is reported
		// by the runtime as uncaught.
	}
}

int Collect(const struct nftmon_event *ev, void *arg)
{
	auto *b = static_cast<Batch *>(arg);
	Ev e;
	e.type = MsgName(ev->msg);
	e.family = FamName(ev->family);
	e.table = ev->table;
	e.gen = ev->gen_id;
	e.pid = ev->pid;
	e.proc = ev->proc;
	b->push_back(std::move(e));
	return 0;
}

void Post(Monitor *m, Batch *b)
{
	if (m->tsfn.NonBlockingCall(b) != napi_ok)
		delete b;
}

void Run(Monitor *m)
{
	std::vector<uint8_t> buf(256 * 1024);
	struct pollfd p[2] = {{m->sock.fd, POLLIN, 0}, {m->wake, POLLIN, 0}};
	while (!m->closed.load()) {
		int r = poll(p, 2, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			Post(m, new Batch{Ev{"error", "", "", 0, 0, "", errno}});
			return;
		}
		if (p[1].revents || m->closed.load())
			return;
		ssize_t n = recv(m->sock.fd, buf.data(), buf.size(), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ENOBUFS) {
				// The socket buffer overflowed: events were lost. The socket stays usable.
				Post(m, new Batch{Ev{"overflow", "", "", 0, 0, "", ENOBUFS}});
				continue;
			}
			Post(m, new Batch{Ev{"error", "", "", 0, 0, "", errno}});
			return;
		}
		auto *b = new Batch();
		int c = nftmon_parse(buf.data(), (size_t)n, Collect, b);
		if (c < 0) {
			delete b;
			Post(m, new Batch{Ev{"overflow", "", "", 0, 0, "", -c}});
			continue;
		}
		if (b->empty()) {
			delete b;
			continue;
		}
		Post(m, b);
	}
}

void Stop(Monitor *m)
{
	if (m->released)
		return;
	m->released = true;
	m->closed.store(true);
	uint64_t one = 1;
	if (write(m->wake, &one, sizeof(one)) < 0) {
		// eventfd write cannot fail short of a bug; the thread also checks `closed`.
	}
	if (m->thread.joinable())
		m->thread.join();
	nl_close(&m->sock);
	close(m->wake);
	m->wake = -1;
	m->tsfn.Release();
}

Napi::Value NftMonitor(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "nft.monitor";
	if (info.Length() < 1 || !info[0].IsFunction())
		plexd::ThrowError(env, EINVAL, op, "", "callback must be a function");
	auto *m = new Monitor();
	int r = nftmon_open(&m->sock);
	if (r < 0) {
		delete m;
		plexd::ThrowError(env, r, op, "NFNLGRP_NFTABLES");
	}
	m->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake < 0) {
		int e = errno;
		nl_close(&m->sock);
		delete m;
		plexd::ThrowError(env, e, op, "eventfd");
	}
	m->tsfn = Tsfn::New(env, info[0].As<Napi::Function>(), "plexd.nftMonitor", 0, 1, m,
			    [](Napi::Env, void *, Monitor *ctx) { delete ctx; }, (void *)nullptr);
	m->thread = std::thread(Run, m);

	Napi::Object handle = Napi::Object::New(env);
	handle.Set("close", Napi::Function::New(env, [m](const Napi::CallbackInfo &i) {
			   Stop(m);
			   return i.Env().Undefined();
		   }));
	handle.Set("unref", Napi::Function::New(env, [m](const Napi::CallbackInfo &i) {
			   if (!m->released)
				   m->tsfn.Unref(i.Env());
			   return i.Env().Undefined();
		   }));
	handle.Set("ref", Napi::Function::New(env, [m](const Napi::CallbackInfo &i) {
			   if (!m->released)
				   m->tsfn.Ref(i.Env());
			   return i.Env().Undefined();
		   }));
	return handle;
}

Napi::Value NftGetGen(const Napi::CallbackInfo &info)
{
	auto gen = std::make_shared<uint32_t>(0);
	return plexd::RunNl(
	    info.Env(), "nft.get_gen", "", NETLINK_NETFILTER,
	    [gen](struct nl_sock *s, struct nl_err *e, std::string &) { return nft_get_gen(s, gen.get(), e); },
	    [gen](Napi::Env env) { return Napi::Number::New(env, *gen); });
}

int CollectTable(const struct nft_table_ref *t, void *arg)
{
	static_cast<std::vector<nft_table_ref> *>(arg)->push_back(*t);
	return 0;
}

Napi::Value NftListTables(const Napi::CallbackInfo &info)
{
	auto out = std::make_shared<std::vector<nft_table_ref>>();
	return plexd::RunNl(
	    info.Env(), "nft.list_tables", "", NETLINK_NETFILTER,
	    [out](struct nl_sock *s, struct nl_err *e, std::string &) { return nft_list_tables(s, CollectTable, out.get(), e); },
	    [out](Napi::Env env) {
		    Napi::Array a = Napi::Array::New(env, out->size());
		    for (size_t i = 0; i < out->size(); i++) {
			    Napi::Object o = Napi::Object::New(env);
			    o.Set("family", FamName((*out)[i].family));
			    o.Set("name", (*out)[i].name);
			    a.Set((uint32_t)i, o);
		    }
		    return a;
	    });
}

} // namespace

void InitNftMon(Napi::Env env, Napi::Object exports)
{
	exports.Set("nftMonitor", Napi::Function::New(env, NftMonitor, "nftMonitor"));
	exports.Set("nftGetGen", plexd::PromiseFunction(env, "nftGetGen", NftGetGen));
	exports.Set("nftListTables", plexd::PromiseFunction(env, "nftListTables", NftListTables));
}
