// Package reliability holds Lode's black-box reliability and security
// suite. It has no code of its own: its tests build the lode binary once
// per run and drive real `lode serve` processes over loopback HTTP with
// real signals (SIGKILL of masters and workers, SIGHUP reloads), and check
// the promises of DESIGN.md from the outside: acknowledged writes survive
// crashes, reloads lose no request, ?sql= cannot write, bad input never
// yields a 5xx, limits hold, and HTML pages escape what they show.
// RELIABILITY.md at the repository root lists the commands and figures.
package reliability
