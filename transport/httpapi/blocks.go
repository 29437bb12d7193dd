package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/adhocd/adhocd/sessman/session"
)

// Blocks reads and lifts the blocks that the session API's deletes set.
// *sessman.Manager implements it; when Config.Sessions does too, the
// server serves GET and DELETE /rest/users/{jid}/block.
type Blocks interface {
	// Block returns the block in force of a user and true.
	Block(ctx context.Context, req session.BlockRequest) (session.Block, bool, error)
	// Unblock lifts the block of a user.
	Unblock(ctx context.Context, req session.BlockRequest) (session.UnblockResult, error)
}

// blockState is the answer of GET /rest/users/{jid}/block.
type blockState struct {
	Blocked bool      `json:"blocked"`
	Until   time.Time `json:"until,omitzero"`
	Reason  *string   `json:"reason,omitempty"`
}

// getBlock answers GET /rest/users/{jid}/block: whether the user may log
// in, and if not until when and why.
func (s *Server) getBlock(b Blocks) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := pathUser(c)
		if err != nil {
			return err
		}
		blk, ok, err := b.Block(c.Request().Context(), session.BlockRequest{User: user, Caller: callerOf(c)})
		if err != nil {
			return err
		}
		if !ok {
			return c.JSON(http.StatusOK, blockState{})
		}
		return c.JSON(http.StatusOK, blockState{Blocked: true, Until: blk.Until, Reason: &blk.Reason})
	}
}

// deleteBlock answers DELETE /rest/users/{jid}/block: it lifts the block,
// {"unblocked": true, "block": {…}} with the block lifted, or
// {"unblocked": false} when there was none.
func (s *Server) deleteBlock(b Blocks) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := pathUser(c)
		if err != nil {
			return err
		}
		res, err := b.Unblock(c.Request().Context(), session.BlockRequest{User: user, Caller: callerOf(c)})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, res)
	}
}
