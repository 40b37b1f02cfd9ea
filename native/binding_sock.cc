// binding_sock.cc — peerCred, execve, sdNotify (synchronous: none of them can wait).
#include "binding.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "sock.h"

namespace {

using plexd::ThrowError;

Napi::Value PeerCred(const Napi::CallbackInfo &info)
{
	const char *op = "sock.peer_cred";
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsNumber())
		ThrowError(env, EINVAL, op, "", "fd must be a number");
	int fd = info[0].As<Napi::Number>().Int32Value();
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int r = sock_peercred(fd, &pid, &uid, &gid);
	if (r < 0)
		ThrowError(env, r, op, "fd " + std::to_string(fd));
	Napi::Object o = Napi::Object::New(env);
	o.Set("pid", Napi::Number::New(env, pid));
	o.Set("uid", Napi::Number::New(env, uid));
	o.Set("gid", Napi::Number::New(env, gid));
	return o;
}

std::vector<std::string> Strings(Napi::Env env, Napi::Value v, const char *op, const char *what)
{
	if (!v.IsArray())
		ThrowError(env, EINVAL, op, "", std::string(what) + " must be an array of strings");
	Napi::Array a = v.As<Napi::Array>();
	std::vector<std::string> out;
	for (uint32_t i = 0; i < a.Length(); i++) {
		Napi::Value e = a.Get(i);
		if (!e.IsString())
			ThrowError(env, EINVAL, op, "", std::string(what) + " must be an array of strings");
		std::string s = e.As<Napi::String>().Utf8Value();
		if (s.find('\0') != std::string::npos)
			ThrowError(env, EINVAL, op, "", std::string(what) + " entries must not contain NUL");
		out.push_back(std::move(s));
	}
	return out;
}

std::vector<char *> Ptrs(std::vector<std::string> &v)
{
	std::vector<char *> p;
	for (auto &s : v)
		p.push_back(&s[0]);
	p.push_back(nullptr);
	return p;
}

Napi::Value Execve(const Napi::CallbackInfo &info)
{
	const char *op = "sock.execve";
	Napi::Env env = info.Env();
	std::string path = plexd::ArgString(info, 0, op, "path");
	std::vector<std::string> argv = Strings(env, info.Length() > 1 ? info[1] : env.Undefined(), op, "argv");
	std::vector<std::string> envv = Strings(env, info.Length() > 2 ? info[2] : env.Undefined(), op, "env");
	std::vector<char *> ap = Ptrs(argv), ep = Ptrs(envv);
	int r = sock_execve(path.c_str(), ap.data(), ep.data());
	ThrowError(env, r, op, path); // only reached when execve failed
}

// $NOTIFY_SOCKET as JS sees it (process.env may differ from the C environ in Bun).
std::string NotifySocket(Napi::Env env)
{
	Napi::Value proc = env.Global().Get("process");
	if (proc.IsObject()) {
		Napi::Value e = proc.As<Napi::Object>().Get("env");
		if (e.IsObject()) {
			Napi::Value s = e.As<Napi::Object>().Get("NOTIFY_SOCKET");
			if (s.IsString())
				return s.As<Napi::String>().Utf8Value();
			return std::string();
		}
	}
	const char *c = getenv("NOTIFY_SOCKET");
	return c ? c : "";
}

Napi::Value SdNotify(const Napi::CallbackInfo &info)
{
	const char *op = "sock.sd_notify";
	Napi::Env env = info.Env();
	std::string state = plexd::ArgString(info, 0, op, "state");
	std::string path = NotifySocket(env);
	if (path.empty())
		return Napi::Boolean::New(env, false);
	int r = sock_sd_notify(path.c_str(), state.data(), state.size());
	if (r < 0)
		ThrowError(env, r, op, path);
	return Napi::Boolean::New(env, true);
}

} // namespace

void InitSock(Napi::Env env, Napi::Object exports)
{
	exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
	exports.Set("execve", Napi::Function::New(env, Execve, "execve"));
	exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}
