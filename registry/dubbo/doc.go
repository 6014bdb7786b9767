// Package dubbo parses what Dubbo clients write into ZooKeeper: interface-level URLs (the names
// of the znodes under /dubbo/<interface>/providers and /consumers) and application-level service
// instances (the Apache Curator ServiceInstance JSON under /services/<app>/<instance>).
//
// Registry content is untrusted: every parser bounds its input, never panics, and returns an
// error that says what was wrong. Display escapes and truncates strings for people and logs.
package dubbo
