import { useContext, useState } from 'react';
import type { BucketName } from '../../api';
import { bucketLabel } from '../../lib/money';
import { BalanceCard } from '../SpendView';
import { BalancesContext } from './context';

/** An answer refused because a bucket is empty: which one, and its top-up form. */
export function TopUpOffer({ bucket }: { bucket: BucketName | null }) {
  const { balances, refreshStatus, navigate } = useContext(BalancesContext);
  const [open, setOpen] = useState(false);
  const b = bucket ? balances.find((x) => x.bucket === bucket) : undefined;
  return (
    <div className="topup-offer" data-testid="topup-offer" data-bucket={bucket ?? ''}>
      <p>
        <strong>{bucket ? `${bucketLabel(bucket)} is empty.` : 'A balance is empty.'}</strong>{' '}
        <span className="muted">The gateway refused the request before anything was sent. Record a top-up, then retry.</span>
      </p>
      {b ? (
        open ? (
          <BalanceCard bucket={b} onTopup={refreshStatus} />
        ) : (
          <button type="button" className="btn btn-small" onClick={() => setOpen(true)} data-testid="topup-open">
            Top up {bucketLabel(bucket)}
          </button>
        )
      ) : (
        <button type="button" className="btn btn-small" onClick={() => navigate('/spend')} data-testid="topup-open">
          Top up on Spend
        </button>
      )}
    </div>
  );
}
