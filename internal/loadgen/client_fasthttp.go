package loadgen

// An experiment for issue 21: valyala/fasthttp's client in place of the
// hand-written one, selected with LODE_LOAD_CLIENT=fasthttp, to measure
// both side by side on the same runs.

import (
	"context"
	"os"

	"github.com/valyala/fasthttp"
)

var useFastHTTP = os.Getenv("LODE_LOAD_CLIENT") == "fasthttp"

// fhState is one user's reusable fasthttp request and response.
type fhState struct {
	req  fasthttp.Request
	resp fasthttp.Response
	last *target
}

func (c *client) doFastHTTP(_ context.Context, cnp **conn, tg *target, keepBody bool) (response, error) {
	c.mu.Lock()
	if c.fh == nil {
		c.fh = &fasthttp.Client{
			ReadTimeout: c.timeout, WriteTimeout: c.timeout, MaxConnWaitTimeout: c.timeout,
			MaxConnsPerHost: 100000, NoDefaultUserAgentHeader: true,
			DisableHeaderNamesNormalizing: true, DisablePathNormalizing: true,
			TLSConfig: c.tls,
		}
	}
	fc := c.fh
	c.mu.Unlock()
	cn := *cnp
	if cn == nil {
		cn = &conn{c: c, fh: &fhState{}}
		*cnp = cn
	}
	st := cn.fh
	if st.last != tg {
		st.req.Reset()
		st.req.Header.SetMethod(tg.method)
		st.req.SetRequestURI(tg.full)
		for _, h := range tg.hdrs {
			st.req.Header.Set(h[0], h[1])
		}
		if tg.body != "" {
			st.req.SetBodyString(tg.body)
		}
		st.last = tg
	}
	if err := fc.Do(&st.req, &st.resp); err != nil {
		return response{}, err
	}
	resp := response{status: st.resp.StatusCode()}
	if !tg.head {
		body := st.resp.Body()
		resp.bytes = int64(len(body))
		if keepBody || resp.status >= 400 {
			resp.body = body
		}
	}
	return resp, nil
}
