// Package explain prints leadscore's scoring model and a lead's state in
// plain words, for the people who tune the rules and answer "why is this
// lead hot?" — marketing and sales operations — rather than for programs.
//
// Rules describes a validated config.Rules; Problems and ParseProblems turn
// validation and parse errors into lines that name the YAML line at fault;
// Lead prints the lead API's view (httpapi.LeadView). Every function writes
// to the io.Writer it is given and keeps no state: safe for concurrent use.
package explain
