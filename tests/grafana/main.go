// Command grafana-probe connects to a ClickHouse HTTP endpoint the way Grafana's ClickHouse data source
// (github.com/grafana/clickhouse-datasource v4.20.0, commit 1d04063a, pkg/plugin/driver.go) does with its
// "HTTP" protocol option, runs the plugin's health check and the queries it is given, and prints JSON.
//
// The plugin's own Go package cannot be imported here (the Go module proxy does not serve it), so this
// program reproduces what it does: the same clickhouse-go version (v2.47.0, the plugin's go.mod), the
// same clickhouse.Options (HTTP, gzip compression, dial/query timeouts, pool sizes, default database),
// the same health check (database/sql PingContext through clickhouse.OpenDB), the same macro expansions
// ($__timeFilter, $__timeInterval, ... from pkg/macros/macros.go) and the same way of reading rows
// (each column scanned into its driver ScanType, as grafana-plugin-sdk-go's sqlutil does). Errors are
// classified with the plugin's containsClickHouseException rule (a "downstream" error for Grafana).
//
// Input (stdin, JSON): {"addr", "user", "password", "database", "from_unix", "to_unix",
// "interval_seconds", "queries": [{"name", "sql", "params": {name: value}}]}.
// Output (stdout, JSON): {"health": {"ok", "error", "server_version"}, "results": [...]}.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type query struct {
	Name   string            `json:"name"`
	SQL    string            `json:"sql"`
	Params map[string]string `json:"params"`
}

type input struct {
	Addr            string  `json:"addr"`
	User            string  `json:"user"`
	Password        string  `json:"password"`
	Database        string  `json:"database"`
	FromUnixMilli   int64   `json:"from_unix_ms"`
	ToUnixMilli     int64   `json:"to_unix_ms"`
	IntervalSeconds int     `json:"interval_seconds"`
	Queries         []query `json:"queries"`
	// The data source's "Custom settings" (and "limit" when its row limit is on), sent with every query.
	Settings map[string]string `json:"settings"`
}

type result struct {
	Name        string   `json:"name"`
	SQL         string   `json:"sql"`
	Columns     []string `json:"columns"`
	Types       []string `json:"types"`
	GoTypes     []string `json:"go_types"`
	Rows        [][]any  `json:"rows"`
	Error       *string  `json:"error"`
	Downstream  bool     `json:"downstream"`
	ElapsedMsec float64  `json:"elapsed_ms"`
}

type health struct {
	OK            bool    `json:"ok"`
	Error         *string `json:"error"`
	Downstream    bool    `json:"downstream"`
	ServerVersion string  `json:"server_version"`
}

type output struct {
	Health  health   `json:"health"`
	Results []result `json:"results"`
}

// options is buildClickHouseOptions of the plugin for protocol "http", no TLS, default settings
// (dial timeout 10 s, query timeout 60 s, no forwarded headers) and the given custom settings.
func options(in input) *clickhouse.Options {
	custom := clickhouse.Settings{}
	for name, value := range in.Settings {
		custom[name] = value
	}
	return &clickhouse.Options{
		Addr: []string{in.Addr},
		Auth: clickhouse.Auth{Database: in.Database, Username: in.User, Password: in.Password},
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "clickhouse-datasource", Version: "4.20.0"},
		}},
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionGZIP},
		DialTimeout: 10 * time.Second,
		HttpHeaders: map[string]string{},
		Protocol:    clickhouse.HTTP,
		ReadTimeout: 60 * time.Second,
		Settings:    custom,
	}
}

// connect is the plugin's Connect: OpenDB, the pool sizes it sets, and a PingContext within the dial timeout.
func connect(in input) (*sql.DB, error) {
	opts := options(in)
	db := clickhouse.OpenDB(opts)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetMaxIdleConns(25)
	db.SetMaxOpenConns(50)
	ctx, cancel := context.WithTimeout(context.Background(), opts.DialTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

var macroCall = regexp.MustCompile(`\$__(timeFilter_ms|timeFilter|timeInterval_ms|timeInterval|fromTime_ms|toTime_ms|fromTime|toTime|dateFilter|interval_s)(\(([^)]*)\))?`)

// expand applies the plugin's macros (pkg/macros/macros.go) for the given time range and interval.
func expand(sqlText string, from, to time.Time, interval time.Duration) string {
	dt := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	dt64 := func(t time.Time) string { return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli()) }
	date := func(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.Format("2006-01-02")) }
	return macroCall.ReplaceAllStringFunc(sqlText, func(call string) string {
		m := macroCall.FindStringSubmatch(call)
		arg := strings.TrimSpace(m[3])
		switch m[1] {
		case "timeFilter":
			return fmt.Sprintf("%s >= %s AND %s <= %s", arg, dt(from), arg, dt(to))
		case "timeFilter_ms":
			return fmt.Sprintf("%s >= %s AND %s <= %s", arg, dt64(from), arg, dt64(to))
		case "dateFilter":
			return fmt.Sprintf("%s >= %s AND %s <= %s", arg, date(from), arg, date(to))
		case "timeInterval":
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", arg, int(interval.Seconds()))
		case "timeInterval_ms":
			return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", arg, interval.Milliseconds())
		case "fromTime":
			return dt(from)
		case "toTime":
			return dt(to)
		case "fromTime_ms":
			return dt64(from)
		case "toTime_ms":
			return dt64(to)
		case "interval_s":
			return fmt.Sprintf("%d", int(interval.Seconds()))
		}
		return call
	})
}

// downstream is the plugin's containsClickHouseException: how Grafana decides the error is the server's.
func downstream(err error) bool {
	var exception *clickhouse.Exception
	if errors.As(err, &exception) {
		return true
	}
	text := err.Error()
	return strings.Contains(text, "DB::Exception") || regexp.MustCompile(`\[HTTP 4\d\d\]`).MatchString(text)
}

// jsonValue turns a scanned driver value into JSON that keeps its type: times as microseconds since the
// epoch with their zone, integers exactly (uint64 included), arrays and maps recursively.
func jsonValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if t, ok := v.Interface().(time.Time); ok {
		return map[string]any{"unix_us": t.UnixMicro(), "zone": t.Location().String()}
	}
	if s, ok := v.Interface().(fmt.Stringer); ok { // UUID, IP addresses, decimals: as Grafana displays them
		return s.String()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		items := make([]any, v.Len())
		for i := range items {
			items[i] = jsonValue(v.Index(i))
		}
		return items
	case reflect.Map:
		items := map[string]any{}
		for _, key := range v.MapKeys() {
			items[fmt.Sprint(key.Interface())] = jsonValue(v.MapIndex(key))
		}
		return items
	default:
		return v.Interface()
	}
}

func run(db *sql.DB, q query, from, to time.Time, interval time.Duration) result {
	res := result{Name: q.Name, SQL: expand(q.SQL, from, to, interval), Rows: [][]any{}}
	fail := func(err error) result {
		text := err.Error()
		res.Error, res.Downstream = &text, downstream(err)
		return res
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if len(q.Params) > 0 {
		ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters(q.Params)))
	}
	started := time.Now()
	rows, err := db.QueryContext(ctx, res.SQL)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	columnTypes, err := rows.ColumnTypes()
	if err != nil {
		return fail(err)
	}
	for _, ct := range columnTypes {
		res.Columns = append(res.Columns, ct.Name())
		res.Types = append(res.Types, ct.DatabaseTypeName())
		res.GoTypes = append(res.GoTypes, ct.ScanType().String())
	}
	for rows.Next() {
		targets := make([]any, len(columnTypes))
		for i, ct := range columnTypes {
			targets[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(targets...); err != nil {
			return fail(err)
		}
		row := make([]any, len(targets))
		for i, target := range targets {
			row[i] = jsonValue(reflect.ValueOf(target))
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	res.ElapsedMsec = float64(time.Since(started).Microseconds()) / 1000
	return res
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "grafana-probe: the input is not the expected JSON:", err)
		os.Exit(2)
	}
	out := output{Results: []result{}}
	db, err := connect(in)
	if err != nil {
		text := err.Error()
		out.Health = health{Error: &text, Downstream: downstream(err)}
	} else {
		defer db.Close()
		out.Health.OK = true
		if err := db.QueryRow("SELECT version()").Scan(&out.Health.ServerVersion); err != nil {
			text := err.Error()
			out.Health = health{Error: &text, Downstream: downstream(err)}
		}
		from, to := time.UnixMilli(in.FromUnixMilli).UTC(), time.UnixMilli(in.ToUnixMilli).UTC()
		interval := time.Duration(in.IntervalSeconds) * time.Second
		for _, q := range in.Queries {
			out.Results = append(out.Results, run(db, q, from, to, interval))
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "grafana-probe:", err)
		os.Exit(1)
	}
}
